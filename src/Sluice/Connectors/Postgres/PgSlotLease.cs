using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Which worker of a cluster reads a replication slot: the one holding a session-level advisory lock keyed by the
/// slot, taken on the source database on a connection of its own (not pooled: closing it must end the session, and
/// with it the lock). The others wait on the lock (<see cref="AcquireAsync"/>). A holder that dies loses the lock with
/// its session at once (a SIGKILL closes the socket); one cut off from the server loses it when the server's TCP
/// keepalives give up on the session (<see cref="KeepaliveSettings"/>, about 8 s), and notices it itself within
/// <see cref="CheckInterval"/> plus <see cref="CheckTimeout"/> (<see cref="Lost"/>). docs/SCALING.md, "CDC".
/// </summary>
internal sealed class PgSlotLease : IAsyncDisposable
{
    /// <summary>How often a stand-by tries the lock: the take-over comes at most this long after the holder's session ends.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the holder makes sure its session (and so the lock) is still there.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>A check not answered within this counts as the session lost.</summary>
    public static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(3);

    /// <summary>The server drops a silent session after 5 s idle and 3 unanswered probes 1 s apart, releasing its lock.</summary>
    private const string KeepaliveSettings = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3";

    private readonly NpgsqlConnection _connection;
    private readonly PostgresCdcOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _watch;

    private PgSlotLease(NpgsqlConnection connection, PostgresCdcOptions options, ILogger log, TimeProvider time)
    {
        _connection = connection;
        _options = options;
        _log = log;
        _time = time;
        _watch = Task.Run(WatchAsync, CancellationToken.None);
    }

    /// <summary>Cancelled once this worker may no longer hold the lock: its session failed a check or is gone.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>The advisory lock's key: the slot and its database, hashed to a positive 64-bit number.</summary>
    public static long Key(PostgresCdcOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"sluice_cdc_slot/{options.Connection.Database}/{options.Slot}"));
        return BinaryPrimitives.ReadInt64BigEndian(hash) & long.MaxValue;
    }

    /// <summary>
    /// Waits until this worker holds the slot's lock. <paramref name="waiting"/> is told who holds it meanwhile (the
    /// holder's <c>application_name</c>, which names its worker), or why the server cannot be asked.
    /// </summary>
    public static async Task<PgSlotLease> AcquireAsync(PostgresCdcOptions options, string worker, ILogger log, TimeProvider time, Action<string> waiting, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(waiting);
        var key = Key(options);
        NpgsqlConnection? connection = null;
        string? said = null;
        try
        {
            while (true)
            {
                string state;
                try
                {
                    connection ??= await OpenAsync(options, worker, ct).ConfigureAwait(false);
                    if (await ScalarAsync<bool>(connection, "SELECT pg_try_advisory_lock($1)", ct, key).ConfigureAwait(false))
                    {
                        PostgresLog.SlotLeaseTaken(log, options.Slot, worker);
                        var lease = new PgSlotLease(connection, options, log, time);
                        connection = null;
                        return lease;
                    }

                    state = $"held by {await HolderAsync(connection, key, ct).ConfigureAwait(false) ?? "a worker that is letting it go"}";
                }
                catch (Exception e) when (PgFailures.IsTransient(e) && !ct.IsCancellationRequested)
                {
                    if (connection is not null) { await connection.DisposeAsync().ConfigureAwait(false); }
                    connection = null;
                    state = $"cannot ask {PgFailures.Describe(options.Connection)} who holds it: {e.Message}";
                }

                waiting(state);
                if (state != said) { PostgresLog.SlotLeaseWaiting(log, options.Slot, state); said = state; }
                await Task.Delay(Poll, time, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            if (connection is not null) { await connection.DisposeAsync().ConfigureAwait(false); }
        }
    }

    /// <summary>
    /// What a stand-by does once while it waits: the queries the source starts with (the catalog, the slot), on the
    /// connection pool it starts them on. A take-over is counted in seconds, and a process that never ran them spends
    /// most of those compiling code and opening connections. Nothing is changed; a failure only means it stays cold.
    /// </summary>
    public static async Task WarmUpAsync(PostgresCdcOptions options, ILogger log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            await using var admin = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-admin"));
            await admin.OpenAsync(ct).ConfigureAwait(false);
            var slots = new PgSlotAdmin(admin, options, log);
            await slots.ResolveTablesAsync(ct).ConfigureAwait(false);
            await slots.SlotAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The source reports what is wrong once it reads the slot, as in a single process.
        }
    }

    /// <summary>
    /// Makes sure no other session reads the slot before this worker does: a predecessor cut off from the server may
    /// still have a replication session there (the server ends it only at <c>wal_sender_timeout</c>). Holding the lock
    /// proves that predecessor no longer holds it, so its session is ended; the slot itself admits one reader only.
    /// </summary>
    public async Task FenceAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(
                "SELECT active_pid, pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active AND active_pid IS NOT NULL", _connection);
            cmd.Parameters.AddWithValue(_options.Slot);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false)) { PostgresLog.SlotReaderFenced(_log, _options.Slot, r.GetInt32(0)); }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Throws (and marks the lease lost) unless the lock's session answers now: called before every connection to the
    /// slot, so a holder that lost its lock while reconnecting never reads again.
    /// </summary>
    public async Task EnsureHeldAsync(CancellationToken ct)
    {
        if (!await CheckAsync(ct).ConfigureAwait(false))
        {
            throw new OperationCanceledException($"postgres_cdc: this worker lost the lock of replication slot '{_options.Slot}'", _lost.Token);
        }
    }

    private async Task WatchAsync()
    {
        try
        {
            while (!_lost.IsCancellationRequested)
            {
                await Task.Delay(CheckInterval, _time, _stop.Token).ConfigureAwait(false);
                await CheckAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Released.
        }
    }

    private async Task<bool> CheckAsync(CancellationToken ct)
    {
        if (_lost.IsCancellationRequested) { return false; }
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
            bounded.CancelAfter(CheckTimeout);
            await ScalarAsync<int>(_connection, "SELECT 1", bounded.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (!_stop.IsCancellationRequested && (PgFailures.IsTransient(e) || e is OperationCanceledException || e is InvalidOperationException))
        {
            PostgresLog.SlotLeaseLost(_log, _options.Slot, e.Message);
            await _lost.CancelAsync().ConfigureAwait(false);
            return false;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The <c>application_name</c> of the session holding the slot's lock, or null when nobody holds it.</summary>
    private static async Task<string?> HolderAsync(NpgsqlConnection connection, long key, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) " +
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1", connection);
        cmd.Parameters.AddWithValue(key);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
    }

    private static async Task<NpgsqlConnection> OpenAsync(PostgresCdcOptions options, string worker, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(options.Connection.ConnectionString(ApplicationName(worker)))
        {
            // Closing a pooled connection keeps its session, and the lock with it.
            Pooling = false,
            Timeout = 5,
            TcpKeepAlive = true,
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(KeepaliveSettings, connection);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>What the lock's session is called in <c>pg_stat_activity</c>: the worker that holds the slot (at most 63 bytes, as the server keeps).</summary>
    public static string ApplicationName(string worker)
    {
        var name = "sluice-cdc-lease " + worker;
        return name.Length <= 63 ? name : name[..63];
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken ct, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        foreach (var a in args) { cmd.Parameters.AddWithValue(a); }
        return (T)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>Ends the lock's session, which releases the lock (a stop hands the slot to a stand-by at once).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _watch.ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
        _lost.Dispose();
        _stop.Dispose();
    }
}
