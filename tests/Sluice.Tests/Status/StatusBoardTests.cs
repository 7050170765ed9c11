using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.Core.Status;

namespace Sluice.Tests.Status;

public class StatusBoardTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Counts_positions_and_lag_per_sink_follow_what_was_read_and_committed()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var p = board.Pipeline("r", "p", "postgres_cdc");
        p.Sink("fast").StartsAt(null);
        p.Sink("slow").StartsAt(null);
        p.Read(100, 10);
        clock.Advance(TimeSpan.FromSeconds(5));
        p.Read(50, 20);
        clock.Advance(TimeSpan.FromSeconds(3));
        p.Committed("fast", 100, 10);

        var view = board.Snapshot().Pipelines.Single();
        view.RecordsIn.ShouldBe(150);
        view.BatchesIn.ShouldBe(2);
        view.Position.ShouldBe(20);
        view.LastReadAt.ShouldBe(T0.AddSeconds(5).UtcDateTime);
        var fast = view.Sinks.Single(s => s.Sink == "fast");
        fast.RecordsOut.ShouldBe(100);
        fast.BatchesOut.ShouldBe(1);
        fast.LagPositions.ShouldBe(10, "read up to 20, committed up to 10");
        fast.LagSeconds.ShouldBe(3, "the batch read at +5 s is the oldest it has not committed, now +8 s");
        fast.LastCommitAt.ShouldBe(T0.AddSeconds(8).UtcDateTime);
        var slow = view.Sinks.Single(s => s.Sink == "slow");
        slow.LagSeconds.ShouldBe(8, "it committed nothing: the first batch, read at +0 s, waits");
        slow.LagPositions.ShouldBeNull("no position known yet");

        p.Committed("slow", 150, 20);
        p.Committed("fast", 50, 20);
        board.Snapshot().Pipelines.Single().Sinks.ShouldAllBe(s => s.LagSeconds == 0 && s.LagPositions == 0);
    }

    [Fact]
    public void A_sink_that_starts_at_its_checkpoint_shows_lag_from_the_first_read()
    {
        var clock = new FakeTimeProvider(T0);
        var p = new StatusBoard(clock).Pipeline("r", "p", "http");
        p.Sink("lake").StartsAt(1_000);
        p.Read(10, 1_500);
        p.View(clock.GetUtcNow(), history: false).Sinks.Single().LagPositions.ShouldBe(500);
    }

    [Fact]
    public void State_and_last_error_are_kept_with_the_time_of_the_failure()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var p = board.Pipeline("r", "p", "files");
        p.State.ShouldBe("starting");
        p.Running();
        p.Condition("no space left on device");
        board.Snapshot().Pipelines.Single().Condition.ShouldBe("no space left on device");
        clock.Advance(TimeSpan.FromMinutes(1));
        p.Failed("sink 'lake': disk gone");
        var view = board.Snapshot().Pipelines.Single();
        view.State.ShouldBe("failed");
        view.LastError.ShouldBe("sink 'lake': disk gone");
        view.LastErrorAt.ShouldBe(T0.AddMinutes(1).UtcDateTime);
        view.LastErrorAt!.Value.Kind.ShouldBe(DateTimeKind.Utc);
    }

    [Fact]
    public void History_takes_one_sample_per_interval_and_keeps_the_last_hour()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var p = board.Pipeline("r", "p", "files");
        board.SampleIfDue().ShouldBeTrue();
        board.SampleIfDue().ShouldBeFalse("a second caller within the interval adds nothing");
        for (var i = 1; i <= 400; i++)
        {
            p.Read(1);
            clock.Advance(StatusBoard.SampleInterval);
            board.SampleIfDue().ShouldBeTrue();
        }

        var samples = board.Snapshot(history: true).Pipelines.Single().History!;
        samples.Count.ShouldBe(StatusBoard.HistoryLength);
        samples[^1].At.ShouldBe(T0.AddSeconds(4000).UtcDateTime);
        samples[0].At.ShouldBe(T0.AddSeconds(4000 - (10 * 359)).UtcDateTime, "the oldest kept is an hour before the newest");
        samples[^1].RecordsIn.ShouldBe(400);
        board.Snapshot().Pipelines.Single().History.ShouldBeNull("only asked for");
    }

    [Fact]
    public void A_job_shows_its_last_run_its_duration_outcome_and_next_scheduled_run()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var job = board.Job("r", "daily", "0 1 * * *");
        var started = job.Starting();
        board.Snapshot().Jobs.Single().Running.ShouldBeTrue();
        clock.Advance(TimeSpan.FromSeconds(42));
        job.Finished(started, false, "source table missing");

        var view = board.Snapshot().Jobs.Single();
        view.Running.ShouldBeFalse();
        view.LastRunAt.ShouldBe(T0.UtcDateTime);
        view.LastDurationSeconds.ShouldBe(42);
        view.LastOutcome.ShouldBe("failed");
        view.LastMessage.ShouldBe("source table missing");
        view.NextRunAt.ShouldBe(new DateTime(2026, 3, 2, 1, 0, 0, DateTimeKind.Utc));
        (view.Runs, view.Failures).ShouldBe((1, 1));
        board.Job("r", "by-hand", null).View(clock.GetUtcNow()).NextRunAt.ShouldBeNull();
    }

    [Fact]
    public void Probes_that_fail_show_as_unknown_and_the_rest_still_answers()
    {
        var board = new StatusBoard(new FakeTimeProvider(T0));
        var p = board.Pipeline("r", "p", "files");
        p.Backlog = () => throw new IOException("drop folder gone");
        p.Slot = () => new SlotFigures("s", 100, 5, 1.5, "reserved", null, 0, T0.UtcDateTime);
        board.DeadLettersOf("r", () => throw new InvalidOperationException("store closed"));
        var snapshot = board.Snapshot();
        snapshot.Pipelines.Single().Backlog.ShouldBeNull();
        snapshot.Pipelines.Single().Slot!.LagBytes.ShouldBe(5);
        snapshot.DeadLetters.ShouldBeEmpty();
    }

    [Fact]
    public void Dead_letter_reasons_are_counted_by_class_and_bounded_per_source()
    {
        DeadLetterReasons.Class("line 12, record 3: field 'speed': 'abc' is not a number").ShouldBe("line #, record #: field '…': '…' is not a number");
        var rows = Enumerable.Range(0, 30).Select(i => ("files:r", $"error kind {(char)('a' + (i % 26))}{(i >= 26 ? "x" : "")} at line {i}", (long)(i + 1)))
            .Append(("files:r", "error kind a at line 99", 100L))
            .ToList();
        var counts = DeadLetterReasons.Count("r", rows);
        counts.Count.ShouldBe(DeadLetterReasons.MaxClasses + 1);
        counts[0].ShouldBe(new DeadLetterCount("r", "files:r", "error kind a at line #", 101));
        counts[^1].Reason.ShouldBe("other");
        counts.Sum(c => c.Count).ShouldBe(rows.Sum(r => r.Item3), "nothing is lost in the bound");
    }
}
