using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Status;

namespace Sluice.Tests.Status;

/// <summary>The Pipeline page's "Recent batches": real batches with each sink's outcome and time taken, bounded.</summary>
public class RecentBatchesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Each_batch_shows_its_records_span_sink_outcomes_and_the_time_to_its_last_sink()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var p = board.Pipeline("r", "p", "http");
        p.Sink("lake").StartsAt(null);
        p.Sink("clickhouse").StartsAt(null);
        p.Read(100, 1_000);
        clock.Advance(TimeSpan.FromSeconds(1));
        p.Read(40, 1_400);
        clock.Advance(TimeSpan.FromSeconds(2));
        p.Committed("lake", 140, 1_400); // one joined write commits both batches
        clock.Advance(TimeSpan.FromSeconds(1));
        p.Committed("clickhouse", 100, 1_000);
        clock.Advance(TimeSpan.FromSeconds(5));
        p.SinkFailed("clickhouse", "connection refused");

        var batches = board.Snapshot().Pipelines.Single().Batches;
        batches.Count.ShouldBe(2);
        var (newest, oldest) = (batches[0], batches[1]);
        oldest.At.ShouldBe(T0.UtcDateTime);
        oldest.Records.ShouldBe(100);
        oldest.PositionTo.ShouldBe(1_000);
        oldest.PositionFrom.ShouldBeNull("nothing was read before it");
        oldest.DurationSeconds.ShouldBe(4, "read at +0 s, its last sink committed it at +4 s");
        oldest.Sinks.Select(s => (s.Sink, s.Outcome)).ShouldBe([("clickhouse", "committed"), ("lake", "committed")]);

        newest.Records.ShouldBe(40);
        (newest.PositionFrom, newest.PositionTo, newest.Bytes).ShouldBe((1_000L, 1_400L, 400L));
        newest.DurationSeconds.ShouldBe(8, "read at +1 s, failed in clickhouse at +9 s");
        var failed = newest.Sinks.Single(s => s.Sink == "clickhouse");
        (failed.Outcome, failed.Error, failed.At).ShouldBe(("failed", "connection refused", T0.AddSeconds(9).UtcDateTime));
        newest.Sinks.Single(s => s.Sink == "lake").At.ShouldBe(T0.AddSeconds(3).UtcDateTime);
    }

    [Fact]
    public void A_source_without_positions_pairs_each_outcome_with_its_oldest_open_batch_and_the_ring_keeps_the_last_ones()
    {
        var clock = new FakeTimeProvider(T0);
        var board = new StatusBoard(clock);
        var p = board.Pipeline("r", "files", "files");
        p.Sink("lake");
        p.Read(3, bytes: 512);
        clock.Advance(TimeSpan.FromMilliseconds(250));
        p.Committed("lake", 3);
        p.Read(1, bytes: 20);
        p.NotCommitted("lake", "failed", "line 1, record 1, field 'ts': not a timestamp");
        var batches = board.Snapshot().Pipelines.Single().Batches;
        batches.Select(b => (b.Records, b.Bytes, b.Sinks.Single().Outcome)).ShouldBe([(1L, (long?)20, "failed"), (3L, (long?)512, "committed")]);
        batches[1].DurationSeconds.ShouldBe(0.25);
        batches[0].Sinks.Single().Error.ShouldNotBeNull().ShouldContain("field 'ts'");

        for (var i = 0; i < RecentBatches.Capacity + 10; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            p.Read(i + 100, bytes: 1);
        }

        batches = board.Snapshot().Pipelines.Single().Batches;
        batches.Count.ShouldBe(RecentBatches.Capacity);
        batches[0].Records.ShouldBe(RecentBatches.Capacity + 10 - 1 + 100);
        batches[^1].Records.ShouldBe(110, "the oldest ones made room");
        batches.ShouldAllBe(b => b.DurationSeconds == null && b.Sinks.Count == 0, "no sink has an outcome for them yet");
    }
}
