using System.Net;
using System.Net.Sockets;
using Npgsql;
using Polly.Timeout;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Http;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using StackExchange.Redis;

namespace Sluice.Tests.Resilience;

/// <summary>What each technology calls transient (tried again) and permanent (loud at once), as tables.</summary>
public sealed class TransientClassifierTests
{
    [Theory]
    [InlineData("08006", true)] // connection failure
    [InlineData("08001", true)] // cannot connect
    [InlineData("57P01", true)] // admin shutdown (a restart)
    [InlineData("57P03", true)] // the server is starting
    [InlineData("53300", true)] // too many connections
    [InlineData("40001", true)] // serialization failure: the same transaction again gets past it
    [InlineData("40P01", true)] // deadlock detected
    [InlineData("55P03", true)] // lock not available
    [InlineData("28P01", false)] // password refused
    [InlineData("3D000", false)] // no such database
    [InlineData("42P01", false)] // no such table
    [InlineData("42501", false)] // no rights
    [InlineData("23505", false)] // unique violation
    [InlineData("55006", false)] // the slot is in use by another process
    [InlineData("22P02", false)] // a value of the wrong form
    public void Postgres_by_sql_state(string state, bool transient) =>
        PgFailures.IsTransient(new PostgresException("m", "ERROR", "ERROR", state)).ShouldBe(transient);

    [Fact]
    public void Postgres_connection_errors_are_transient_a_full_local_disk_and_other_errors_are_not()
    {
        PgFailures.IsTransient(new NpgsqlException("Exception while reading from stream", new IOException("reset"))).ShouldBeTrue();
        PgFailures.IsTransient(new SocketException((int)SocketError.ConnectionRefused)).ShouldBeTrue();
        PgFailures.IsTransient(new TimeoutException()).ShouldBeTrue();
        PgFailures.IsTransient(new IOException("No space left on device : '/d/x'", 28)).ShouldBeFalse();
        PgFailures.IsTransient(new InvalidOperationException("bug")).ShouldBeFalse();
    }

    [Fact]
    public void Redis_connection_loading_and_busy_are_transient_other_server_errors_are_not()
    {
#pragma warning disable CS0618 // the short constructors are enough to stand for what the client throws
        RedisFailures.IsTransient(new RedisConnectionException(ConnectionFailureType.UnableToConnect, "refused")).ShouldBeTrue();
        RedisFailures.IsTransient(new RedisTimeoutException("timeout", CommandStatus.Sent)).ShouldBeTrue();
        RedisFailures.IsTransient(new RedisServerException("LOADING Redis is loading the dataset in memory")).ShouldBeTrue();
        RedisFailures.IsTransient(new RedisServerException("BUSY Redis is busy running a script")).ShouldBeTrue();
        RedisFailures.IsTransient(new RedisServerException("WRONGTYPE Operation against a key holding the wrong kind of value")).ShouldBeFalse();
        RedisFailures.IsTransient(new RedisServerException("NOAUTH Authentication required")).ShouldBeFalse();
        RedisFailures.IsTransient(new RedisServerException("ERR Error running script")).ShouldBeFalse();
#pragma warning restore CS0618
    }

    [Theory]
    [InlineData(500, true)]
    [InlineData(502, true)]
    [InlineData(503, true)]
    [InlineData(504, true)]
    [InlineData(408, true)]
    [InlineData(429, true)]
    [InlineData(400, false)]
    [InlineData(401, false)]
    [InlineData(403, false)]
    [InlineData(404, false)]
    [InlineData(409, false)]
    [InlineData(422, false)]
    public void Http_by_status(int status, bool transient) => HttpFailures.IsTransient((HttpStatusCode)status).ShouldBe(transient);

    [Fact]
    public void Http_no_answer_is_transient()
    {
        HttpFailures.IsTransient(new HttpRequestException("Connection refused")).ShouldBeTrue();
        HttpFailures.IsTransient(new TimeoutRejectedException()).ShouldBeTrue();
        HttpFailures.IsTransient(new TaskCanceledException("HttpClient.Timeout", new TimeoutException())).ShouldBeTrue();
        HttpFailures.IsTransient(new InvalidOperationException("bug")).ShouldBeFalse();
    }

    [Theory]
    [InlineData(503, -1, true)] // overloaded, no code
    [InlineData(500, 159, true)] // TIMEOUT_EXCEEDED
    [InlineData(500, 241, false)] // MEMORY_LIMIT_EXCEEDED for this query: the same query fails again
    [InlineData(500, 62, false)] // SYNTAX_ERROR
    [InlineData(404, 60, false)] // UNKNOWN_TABLE
    [InlineData(400, 16, false)] // NO_SUCH_COLUMN_IN_TABLE
    [InlineData(429, -1, true)]
    [InlineData(400, -1, false)]
    public void ClickHouse_by_status_and_exception_code(int status, int code, bool transient) =>
        ClickHouseFailures.IsTransient((HttpStatusCode)status, code).ShouldBe(transient);

    [Theory]
    [InlineData(400, null, "", true)] // the HTTP server's own refusal: ClickHouse never read the request
    [InlineData(400, null, "\n", true)]
    [InlineData(400, null, "Code: 62, e.displayText() = DB::Exception: Syntax error", false)]
    [InlineData(400, "62", "", false)]
    [InlineData(500, null, "", false)]
    public void ClickHouse_a_400_without_message_was_refused_unread(int status, string? code, string body, bool unread) =>
        ClickHouseFailures.RefusedUnread((HttpStatusCode)status, code, body).ShouldBe(unread);

    [Fact]
    public void ClickHouse_no_answer_is_transient_a_rejected_request_is_not()
    {
        ClickHouseFailures.IsTransient(new ClickHouseException("did not answer", transient: true)).ShouldBeTrue();
        ClickHouseFailures.IsTransient(new ClickHouseException("rejected", transient: false)).ShouldBeFalse();
        ClickHouseFailures.IsTransient(new HttpRequestException("Connection refused")).ShouldBeTrue();
    }
}
