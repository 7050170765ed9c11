using Microsoft.Extensions.Time.Testing;
using Sluice.Serving.Console;

namespace Sluice.Tests.Serving;

/// <summary>The console's sessions end when idle, at their lifetime, at logout, and stay bounded; CSRF values compare exactly.</summary>
public class ConsoleSessionsTests
{
    [Fact]
    public void A_session_ends_after_its_idle_time_and_each_request_restarts_that_time()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(time);
        var s = sessions.Open("sk_token");
        s.Id.ShouldNotContain("sk_token");
        time.Advance(ConsoleSessions.IdleTimeout - TimeSpan.FromMinutes(1));
        sessions.Find(s.Id).ShouldBeSameAs(s);
        time.Advance(ConsoleSessions.IdleTimeout - TimeSpan.FromMinutes(1));
        sessions.Find(s.Id).ShouldBeSameAs(s, "the request before restarted the idle time");
        time.Advance(ConsoleSessions.IdleTimeout);
        sessions.Find(s.Id).ShouldBeNull();
        sessions.Count.ShouldBe(0);
    }

    [Fact]
    public void A_session_in_constant_use_still_ends_at_its_lifetime_and_logout_ends_it_at_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(time);
        var s = sessions.Open("sk_token");
        for (var used = TimeSpan.Zero; used < ConsoleSessions.Lifetime - TimeSpan.FromHours(1); used += TimeSpan.FromHours(1))
        {
            time.Advance(TimeSpan.FromHours(1));
            sessions.Find(s.Id).ShouldNotBeNull();
        }

        time.Advance(TimeSpan.FromHours(1));
        sessions.Find(s.Id).ShouldBeNull();

        var other = sessions.Open("sk_token");
        sessions.Close(other.Id);
        sessions.Find(other.Id).ShouldBeNull();
        sessions.Find(null).ShouldBeNull();
        sessions.Find("").ShouldBeNull();
    }

    [Fact]
    public void Past_the_bound_the_oldest_session_makes_room()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 8, 0, 0, TimeSpan.Zero));
        var sessions = new ConsoleSessions(time);
        var first = sessions.Open("sk_a");
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 1; i < ConsoleSessions.MaxSessions; i++) { sessions.Open("sk_b"); }
        sessions.Count.ShouldBe(ConsoleSessions.MaxSessions);
        var newest = sessions.Open("sk_c");
        sessions.Count.ShouldBe(ConsoleSessions.MaxSessions);
        sessions.Find(first.Id).ShouldBeNull();
        sessions.Find(newest.Id).ShouldNotBeNull();
    }

    [Fact]
    public void Csrf_value_must_be_the_sessions_own()
    {
        var sessions = new ConsoleSessions(TimeProvider.System);
        var s = sessions.Open("sk_token");
        var t = sessions.Open("sk_token");
        s.Csrf.ShouldNotBe(t.Csrf);
        s.CsrfMatches(s.Csrf).ShouldBeTrue();
        s.CsrfMatches(t.Csrf).ShouldBeFalse();
        s.CsrfMatches(null).ShouldBeFalse();
        s.CsrfMatches("").ShouldBeFalse();
        s.CsrfMatches(s.Csrf + "x").ShouldBeFalse();
    }
}
