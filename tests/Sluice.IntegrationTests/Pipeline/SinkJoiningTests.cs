using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>How the pipeline hands a sink that opts in the batches waiting in its queue, as one write.</summary>
public sealed class SinkJoiningTests
{
    private static readonly TableSchema Facts = new("facts", [new FieldSpec("id", FieldType.Integer, true)]);
    private static readonly TableSchema Dimension = new("dimension", [new FieldSpec("key", FieldType.String, true)]);

    [Fact]
    public async Task A_slow_sink_gets_the_waiting_batches_joined_in_order_while_a_plain_sink_gets_each_batch()
    {
        using var engine = new Engine();
        // Facts 1-3, a dimension change, facts 4-6, an empty batch (a position only), facts 7-9.
        var batches = new[]
        {
            new RecordBatch(Ids(1, 2, 3), 10), new RecordBatch(Keys("a"), 20), new RecordBatch(Ids(4, 5, 6), 30),
            new RecordBatch([], 40), new RecordBatch(Ids(7, 8, 9), 50),
        };
        var gate = new SemaphoreSlim(0);
        var joining = new RecordingSink("joining", SinkJoining.Waiting(1_000), gate);
        var plain = new RecordingSink("plain", SinkJoining.None, null);
        // The rest come only once the joining sink is held in its first write, so they queue up behind it.
        var source = new ListSource(batches, before: i => i == 1 ? joining.FirstWrite : Task.CompletedTask);
        await using var pipeline = new StreamPipeline(engine.Services, "test", "p", source, [], [joining, plain]);

        var run = pipeline.RunOnceAsync(CancellationToken.None);
        await Wait.UntilAsync(() => plain.Writes.Count == batches.Length);
        gate.Release(int.MaxValue / 2);
        await run;

        plain.Writes.Select(w => w.Position).ShouldBe([10, 20, 30, 40, 50]);
        joining.Writes.Count.ShouldBe(2);
        joining.Writes[0].Position.ShouldBe(10);
        var joined = joining.Writes[1];
        joined.Position.ShouldBe(50);
        // Neighbouring pieces of one table are one; the dimension change stays between the facts before and after it.
        joined.Tables.Select(t => t.Schema.Table).ShouldBe(["dimension", "facts"]);
        joined.Tables[1].Column<long>(0).ShouldBe([4L, 5L, 6L, 7L, 8L, 9L]);
        pipeline.Committed.ShouldBe(50);
    }

    [Fact]
    public async Task A_linger_waits_for_the_next_batch_and_the_row_limit_ends_a_join()
    {
        using var engine = new Engine();
        var batches = Enumerable.Range(0, 6).Select(i => new RecordBatch(Ids(i * 2, i * 2 + 1), (i + 1) * 10L)).ToArray();
        var sink = new RecordingSink("lingering", new SinkJoining(MaxRows: 4, Linger: TimeSpan.FromSeconds(5)), null);
        // The source pauses between batches: without the linger, each would be written alone.
        await using var pipeline = new StreamPipeline(engine.Services, "test", "p", new ListSource(batches, before: i => i == 0 ? Task.CompletedTask : Task.Delay(50)), [], [sink]);

        await pipeline.RunOnceAsync(CancellationToken.None);

        sink.Writes.Select(w => w.Count).ShouldBe([4, 4, 4]);
        sink.Writes.Select(w => w.Position).ShouldBe([20, 40, 60]);
    }

    private static ColumnBatch Ids(params long[] ids) => new(Facts, [ids.Select(i => (long?)i).ToArray()], ids.Length);

    private static ColumnBatch Keys(params string[] keys) => new(Dimension, [keys.Cast<string?>().ToArray()], keys.Length);
}
