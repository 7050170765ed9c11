using Microsoft.Extensions.Time.Testing;
using Sluice.Alerts;
using Sluice.Alerts.Conditions;
using Sluice.Core.Status;
using Sluice.Jobs;

namespace Sluice.Tests.Alerts;

/// <summary>Each kind of alert fires and resolves on made-up figures and a fake clock; a condition that holds fires once.</summary>
public class AlertTransitionTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider _clock = new(T0);
    private readonly StatusBoard _board;
    private readonly FakeAlertFacts _facts;
    private readonly AlertTracker _tracker = new();

    public AlertTransitionTests()
    {
        _board = new StatusBoard(_clock);
        _facts = new FakeAlertFacts(_board);
    }

    [Fact]
    public void Freshness_fires_when_the_table_had_no_data_for_longer_than_its_window_and_resolves_with_new_data()
    {
        var rule = Rule(new FreshnessCondition("raw.events", TimeSpan.FromMinutes(30)));
        _facts.Commits["raw.events"] = T0;
        Step(rule, TimeSpan.Zero).ShouldBeNull("a new alert that finds all well changes nothing");
        Step(rule, TimeSpan.FromMinutes(30)).ShouldBeNull("exactly the window: not yet");
        var fired = Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull();
        fired.Event.ShouldBe("firing");
        fired.Current.Message.ShouldContain("table raw.events: no new data for 31 min, more than 30 min");
        Step(rule, TimeSpan.FromMinutes(10)).ShouldBeNull("still stale: no second notice");
        _facts.Commits["raw.events"] = _clock.GetUtcNow();
        var resolved = Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull();
        resolved.Event.ShouldBe("resolved");
        resolved.Previous.Since.ShouldBe(T0.AddMinutes(31));
    }

    [Fact]
    public void Freshness_of_a_table_that_never_had_data_counts_from_when_the_alert_was_first_checked()
    {
        var rule = Rule(new FreshnessCondition("raw.events", TimeSpan.FromHours(1)));
        Step(rule, TimeSpan.Zero).ShouldBeNull("a fresh install does not fire at once");
        Step(rule, TimeSpan.FromMinutes(59)).ShouldBeNull();
        Step(rule, TimeSpan.FromMinutes(2)).ShouldNotBeNull().Current.Message.ShouldContain("no data since the alert was set up (2026-03-01 12:00:00Z)");
    }

    [Fact]
    public void Lag_fires_on_a_sink_behind_its_source_or_on_a_backlog_and_resolves_when_it_catches_up()
    {
        var rule = Rule(new LagCondition("r/p", TimeSpan.FromSeconds(60), 100));
        var p = _board.Pipeline("r", "p", "http");
        p.Sink("lake").StartsAt(null);
        long backlog = 0;
        p.Backlog = () => new Backlog(backlog, "bytes");
        p.Read(10, 10);
        Step(rule, TimeSpan.FromSeconds(60)).ShouldBeNull("60 s behind is the limit, not over it");
        var fired = Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull();
        fired.Current.Message.ShouldBe("pipeline r/p: sink 'lake' is 61 s behind its source, more than 60 s");
        p.Committed("lake", 10, 10);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Event.ShouldBe("resolved");
        backlog = 101;
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Current.Message.ShouldBe("pipeline r/p: backlog of 101 bytes, more than 100");
    }

    [Fact]
    public void Slot_lag_fires_on_bytes_or_seconds_behind_and_resolves()
    {
        var rule = Rule(new SlotLagCondition("r/cdc", 1_000_000, TimeSpan.FromMinutes(5)));
        var p = _board.Pipeline("r", "cdc", "postgres_cdc");
        SlotFigures slot = Slot(lagBytes: 10, lagSeconds: 1, "reserved", null);
        p.Slot = () => slot;
        Step(rule, TimeSpan.Zero).ShouldBeNull();
        slot = Slot(2_000_000, 1, "reserved", null);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Current.Message.ShouldBe("pipeline r/cdc: slot s is 2,000,000 bytes of WAL behind, more than 1,000,000");
        slot = Slot(10, 400, "reserved", null);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldBeNull("still firing (for another reason): no second notice");
        slot = Slot(10, 1, "reserved", null);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Event.ShouldBe("resolved");
    }

    [Fact]
    public void Slot_wal_fires_when_little_WAL_is_left_or_the_status_is_unreserved_and_resolves()
    {
        var rule = Rule(new SlotWalCondition("r/cdc", 1L << 30));
        var p = _board.Pipeline("r", "cdc", "postgres_cdc");
        SlotFigures slot = Slot(0, 0, "reserved", 4L << 30);
        p.Slot = () => slot;
        Step(rule, TimeSpan.Zero).ShouldBeNull();
        slot = Slot(0, 0, "extended", 512L << 20);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Current.Message.ShouldContain("only 536,870,912 bytes of WAL may still be written");
        slot = Slot(0, 0, "reserved", null);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Event.ShouldBe("resolved", "no limit on the server: only the status counts");
        slot = Slot(0, 0, "unreserved", null);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Current.Message.ShouldContain("wal_status 'unreserved'");
    }

    [Fact]
    public void Dead_letters_fire_on_more_than_n_new_in_the_window_and_resolve_when_they_age_out()
    {
        var rule = Rule(new DeadLettersCondition("r", null, 2, TimeSpan.FromMinutes(10)));
        _facts.Letters.Add(("files:r", T0));
        _facts.Letters.Add(("files:r", T0));
        Step(rule, TimeSpan.Zero).ShouldBeNull("two is not more than two");
        _facts.Letters.Add(("files:r", T0.AddMinutes(1)));
        Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull().Current.Message.ShouldBe("dead letters of r: 3 new in the last 10 min, more than 2");
        Step(rule, TimeSpan.FromMinutes(9)).ShouldBeNull("at +10 min the first two are still in the window");
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Event.ShouldBe("resolved");
    }

    [Fact]
    public void Job_failed_fires_on_a_failed_or_interrupted_last_run_and_resolves_with_a_success()
    {
        var rule = Rule(new JobFailedCondition("r/daily"));
        Step(rule, TimeSpan.Zero).ShouldBeNull("no run yet");
        _facts.Run("r/daily", T0, JobRunStore.Succeeded);
        Step(rule, TimeSpan.FromMinutes(1)).ShouldBeNull();
        _facts.Run("r/daily", T0.AddMinutes(1), JobRunStore.Failed, "DuckDB: table x not found");
        Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull().Current.Message.ShouldBe("job r/daily: last run failed at 2026-03-01 12:01:05Z: DuckDB: table x not found");
        _facts.Run("r/daily", T0.AddMinutes(2), JobRunStore.Running);
        Step(rule, TimeSpan.FromMinutes(1)).ShouldBeNull("a run in progress changes nothing");
        _facts.Run("r/daily", T0.AddMinutes(3), JobRunStore.Succeeded);
        Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull().Event.ShouldBe("resolved");
        _facts.Run("r/daily", T0.AddMinutes(4), JobRunStore.Interrupted);
        Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull().Event.ShouldBe("firing");
    }

    [Fact]
    public void Job_late_fires_when_a_scheduled_run_has_not_started_within_the_grace_and_resolves_when_it_starts()
    {
        // Due at 13:00 (hourly), grace 10 min.
        var rule = Rule(new JobLateCondition("r/hourly", "0 * * * *", TimeSpan.FromMinutes(10)));
        Step(rule, TimeSpan.Zero).ShouldBeNull();
        Step(rule, TimeSpan.FromMinutes(70)).ShouldBeNull("13:10 is the end of the grace, not past it");
        var fired = Step(rule, TimeSpan.FromMinutes(1)).ShouldNotBeNull();
        fired.Current.Message.ShouldBe("job r/hourly: due at 2026-03-01 13:00:00Z (schedule '0 * * * *'), not started within 10 min; no run yet");
        _facts.Run("r/hourly", _clock.GetUtcNow(), JobRunStore.Running);
        Step(rule, TimeSpan.FromSeconds(1)).ShouldNotBeNull().Event.ShouldBe("resolved", "a run started: the next one is due at 14:00");
    }

    [Fact]
    public void States_kept_from_before_a_restart_do_not_fire_again_but_resolve()
    {
        var rule = Rule(new FreshnessCondition("raw.events", TimeSpan.FromMinutes(5)));
        var kept = new Dictionary<string, AlertState> { [rule.Name] = new(true, T0.AddMinutes(-30), "stale", T0.AddHours(-2)) };
        var tracker = new AlertTracker(kept);
        var now = _clock.GetUtcNow();
        tracker.Observe(rule, rule.Condition.Check(_facts, now, tracker.WatchedSince(rule, now)), now).ShouldBeNull("still firing: it was notified before the restart");
        tracker.State(rule.Name)!.Since.ShouldBe(T0.AddMinutes(-30));
        _facts.Commits["raw.events"] = now;
        tracker.Observe(rule, rule.Condition.Check(_facts, now, tracker.WatchedSince(rule, now)), now).ShouldNotBeNull().Event.ShouldBe("resolved");
    }

    private static AlertRule Rule(AlertCondition condition) => new("r", "a", AlertSeverity.Warning, condition);

    private static SlotFigures Slot(long lagBytes, double lagSeconds, string walStatus, long? safe) =>
        new("s", 100, lagBytes, lagSeconds, walStatus, safe, 0, T0.UtcDateTime);

    /// <summary>Moves the clock on, then checks once.</summary>
    private AlertTransition? Step(AlertRule rule, TimeSpan advance)
    {
        _clock.Advance(advance);
        var now = _clock.GetUtcNow();
        return _tracker.Observe(rule, rule.Condition.Check(_facts, now, _tracker.WatchedSince(rule, now)), now);
    }
}
