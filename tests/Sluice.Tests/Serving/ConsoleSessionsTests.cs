using Microsoft.Extensions.Time.Testing;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Serving.Console;

namespace Sluice.Tests.Serving;

/// <summary>
/// The console's sessions end when idle, at their lifetime, at logout, and stay bounded; CSRF values compare exactly;
/// they live in the metadata store (a new instance, as after a restart, finds them) and only hashed.
/// </summary>
public sealed class ConsoleSessionsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sluice-sessions-" + Guid.NewGuid().ToString("N"));

    private MetadataStore? _store;

    private MetadataStore Store => _store ??= new MetadataStore(new DataDirectory(_root));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root)) { Directory.Delete(_root, recursive: true); }
    }

    [Fact]
    public void A_session_outlives_its_instance_and_the_store_holds_neither_its_id_nor_a_token()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var s = new ConsoleSessions(Store, time).Open("abc123");
        time.Advance(TimeSpan.FromMinutes(30));
        var restarted = new ConsoleSessions(Store, time);
        var found = restarted.Find(s.Id).ShouldNotBeNull();
        found.TokenId.ShouldBe("abc123");
        found.Csrf.ShouldBe(s.Csrf);
        found.Created.ShouldBe(s.Created);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        var bytes = File.ReadAllBytes(Store.Path).Concat(File.Exists(Store.Path + "-wal") ? File.ReadAllBytes(Store.Path + "-wal") : []).ToArray();
        System.Text.Encoding.ASCII.GetString(bytes).ShouldNotContain(s.Id, customMessage: "only the session id's hash is stored");
        restarted.Close(s.Id);
        new ConsoleSessions(Store, time).Find(s.Id).ShouldBeNull("logout ends it for every instance");
    }

    [Fact]
    public void A_session_ends_after_its_idle_time_and_each_request_restarts_that_time()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(Store, time);
        var s = sessions.Open("tok1");
        s.Id.ShouldNotContain("tok1");
        time.Advance(ConsoleSessions.IdleTimeout - TimeSpan.FromMinutes(1));
        sessions.Find(s.Id).ShouldNotBeNull();
        time.Advance(ConsoleSessions.IdleTimeout - TimeSpan.FromMinutes(1));
        sessions.Find(s.Id).ShouldNotBeNull("the request before restarted the idle time");
        time.Advance(ConsoleSessions.IdleTimeout);
        sessions.Find(s.Id).ShouldBeNull();
        sessions.Count.ShouldBe(0);
    }

    [Fact]
    public void A_session_in_constant_use_still_ends_at_its_lifetime_and_logout_ends_it_at_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(Store, time);
        var s = sessions.Open("tok1");
        for (var used = TimeSpan.Zero; used < ConsoleSessions.Lifetime - TimeSpan.FromHours(1); used += TimeSpan.FromHours(1))
        {
            time.Advance(TimeSpan.FromHours(1));
            sessions.Find(s.Id).ShouldNotBeNull();
        }

        time.Advance(TimeSpan.FromHours(1));
        sessions.Find(s.Id).ShouldBeNull();

        var other = sessions.Open("tok1");
        sessions.Close(other.Id);
        sessions.Find(other.Id).ShouldBeNull();
        sessions.Find(null).ShouldBeNull();
        sessions.Find("").ShouldBeNull();
    }

    [Fact]
    public void Past_the_bound_the_oldest_session_makes_room()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(Store, time);
        var first = sessions.Open("tok_a");
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 1; i < ConsoleSessions.MaxSessions; i++) { sessions.Open("tok_b"); }
        sessions.Count.ShouldBe(ConsoleSessions.MaxSessions);
        var newest = sessions.Open("tok_c");
        sessions.Count.ShouldBe(ConsoleSessions.MaxSessions);
        sessions.Find(first.Id).ShouldBeNull();
        sessions.Find(newest.Id).ShouldNotBeNull();
    }

    [Fact]
    public void Csrf_value_must_be_the_sessions_own()
    {
        var sessions = new ConsoleSessions(Store, TimeProvider.System);
        var s = sessions.Open("tok1");
        var t = sessions.Open("tok1");
        s.Csrf.ShouldNotBe(t.Csrf);
        s.CsrfMatches(s.Csrf).ShouldBeTrue();
        s.CsrfMatches(t.Csrf).ShouldBeFalse();
        s.CsrfMatches(null).ShouldBeFalse();
        s.CsrfMatches("").ShouldBeFalse();
        s.CsrfMatches(s.Csrf + "x").ShouldBeFalse();
    }
}
