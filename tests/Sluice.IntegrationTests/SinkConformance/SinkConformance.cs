using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.SinkConformance.ConformanceRows;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// The sink conformance suite (after Wolverine's <c>TransportCompliance&lt;T&gt;</c>): every sink passes the same tests
/// through the real pipeline runner against the real server, each with its own <typeparamref name="TFixture"/> (a fresh
/// table, key prefix or zone per test). What a keyed sink must hold is the last row of each key; an appending sink every
/// row once. A property a sink does not have is declared by its fixture, and then its refusal is what is tested.
/// </summary>
public abstract class SinkConformance<TFixture> : IAsyncLifetime where TFixture : SinkFixture, new()
{
    protected TFixture Fixture { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Fixture.DisposeAsync();

    private List<RecordBatch> Batches(IEnumerable<List<Item>> cuts) => cuts.Select(Fixture.Batch).ToList();

    private async Task LandsAsync(IReadOnlyList<Item> written, string why) =>
        (await Fixture.ReadAsync()).ShouldBe(Fixture.Expected(written), why);

    [Fact]
    public async Task A_batch_replayed_after_a_crash_lands_once()
    {
        var rows = Stream(12, keys: 12);
        var first = Batches(Cut(rows, 4, 4));
        // The sink wrote the second batch and died before its checkpoint: the restart hands it over again.
        var crash = await Should.ThrowAsync<SluiceException>(() => PipelineRun.OnceAsync(Fixture, PipelineRun.CrashingAfter(Fixture.Create(), first[1].Position), first));
        crash.Message.ShouldContain("crash after the write");

        await PipelineRun.OnceAsync(Fixture, Fixture.Create(), Batches(Cut(rows, 4, 4, 4)));

        await LandsAsync(rows, "every row once: the replayed batch added nothing");
    }

    [Fact]
    public async Task The_same_rows_cut_into_other_batches_land_the_same()
    {
        var rows = Stream(15, keys: 15);
        var first = Batches(Cut(rows, 5, 5));
        await Should.ThrowAsync<SluiceException>(() => PipelineRun.OnceAsync(Fixture, PipelineRun.CrashingAfter(Fixture.Create(), first[0].Position), first));

        // Replayed cut elsewhere: batches that start inside what was written, and straddle the crash.
        await PipelineRun.OnceAsync(Fixture, Fixture.Create(), Batches(Cut(rows, 3, 4, 6)));

        await LandsAsync(rows, "rows written before the crash, then again in batches cut differently, land once");
    }

    [Fact]
    public async Task Consecutive_batches_keep_their_order_so_the_last_write_of_a_key_wins()
    {
        // Four keys, each written five times, in batches of one to three rows that the runner may join.
        var rows = Stream(20, keys: 4);
        await PipelineRun.OnceAsync(Fixture, Fixture.Create(), Batches(Cut(rows, 1, 2, 3, 1, 2, 3, 1, 2, 3)));

        await LandsAsync(rows, Fixture.Kind == SinkKind.Keyed ? "each key holds its last write" : "every write once");
    }

    [Fact]
    public async Task A_column_added_mid_stream_lands_with_the_rows_that_have_it()
    {
        var before = Stream(4, keys: 4);
        var after = Stream(4, keys: 4, from: 5, note: true);
        await PipelineRun.OnceAsync(Fixture, Fixture.Create(), [Fixture.Batch(before)]);
        await PipelineRun.OnceAsync(Fixture, Fixture.Create(), [Fixture.Batch(after)]);

        await LandsAsync([.. before, .. after], "rows before the new column keep it empty, rows after it have it");
    }

    [Fact]
    public async Task Transient_failures_are_retried_until_the_write_succeeds()
    {
        await using var fault = await Fixture.FaultAsync();
        var rows = Stream(10, keys: 10);
        fault.Break();
        var run = PipelineRun.OnceAsync(Fixture, Fixture.Create(fault), Batches(Cut(rows, 5)));
        await Wait.UntilAsync(() => fault.Failures >= 1 || run.IsCompleted);
        run.IsCompleted.ShouldBeFalse("the run waits for the sink while its writes fail");
        fault.Heal();
        await run.WaitAsync(TimeSpan.FromSeconds(60));

        await LandsAsync(rows, "after the failures every row landed, once");
    }

    [Fact]
    public async Task A_stop_drains_what_was_accepted_even_while_the_sink_is_failing()
    {
        await using var fault = await Fixture.FaultAsync();
        var rows = Stream(12, keys: 12);
        fault.Break();
        await PipelineRun.StoppedAsync(Fixture, Fixture.Create(fault), Batches(Cut(rows, 4, 4)), async () =>
        {
            await Wait.UntilAsync(() => fault.Failures >= 1);
            fault.Heal();
        });

        await LandsAsync(rows, "every batch the source handed over before the stop is written by the drain");
    }

    [Fact]
    public async Task A_mirror_applies_inserts_updates_and_deletes_or_is_refused_clearly()
    {
        if (Fixture is not IMirrorFixture mirror)
        {
            var errors = Fixture.Load(Fixture.MirrorOption);
            var error = errors.ShouldHaveSingleItem($"{typeof(TFixture).Name}: a sink without mirrors refuses mode: mirror at load");
            error.Key.ShouldBe("mode");
            error.Line.ShouldBeGreaterThan(0);
            return;
        }

        var changes = new List<RecordBatch>
        {
            MirrorBatches.Changes(10, ("c", 1, "a", 1), ("c", 2, "b", 2), ("c", 3, "c", 3)),
            MirrorBatches.Changes(20, ("u", 2, "b2", 20), ("d", 3, null, 0)),
            MirrorBatches.Changes(30, ("c", 4, "d", 4), ("u", 1, "a2", 10), ("d", 4, null, 0)),
        };
        await PipelineRun.OnceAsync(Fixture, mirror.CreateMirror(), changes, "mirror");

        (await mirror.ReadMirrorAsync()).ShouldBe(["id=1 name=a2 qty=10", "id=2 name=b2 qty=20"], "inserted, updated and deleted as the changes say");
    }
}

/// <summary>Change batches as <c>postgres_cdc</c> sends them: the table's key, the envelope, one transaction per batch.</summary>
internal static class MirrorBatches
{
    public static readonly TableSchema Schema = new("items",
        [new("id", FieldType.Integer, true), new("name", FieldType.String, false), new("qty", FieldType.Integer, false), .. ChangeEnvelope.Fields])
    {
        Key = ["id"],
    };

    /// <summary>A transaction's changes; a truncate (<c>t</c>) has no key, as <c>postgres_cdc</c> sends it (its Id is ignored).</summary>
    public static RecordBatch Changes(long lsn, params (string Op, long Id, string? Name, long Qty)[] rows)
    {
        var n = rows.Length;
        return new RecordBatch(new ColumnBatch(Schema,
        [
            rows.Select(r => r.Op == "t" ? null : (long?)r.Id).ToArray(), rows.Select(r => r.Name).ToArray(), rows.Select(r => r.Op is "d" or "t" ? null : (long?)r.Qty).ToArray(),
            rows.Select(r => r.Op).ToArray(), rows.Select(_ => (long?)lsn).ToArray(), rows.Select((_, i) => (long?)(lsn * 100 + i)).ToArray(),
            rows.Select(_ => (long?)lsn).ToArray(), rows.Select(_ => (DateTime?)Item.T0).ToArray(),
            rows.Select(r => r.Op == "d" ? $"{{\"id\":{r.Id}}}" : null).ToArray(), new string?[n],
        ], n), lsn);
    }
}
