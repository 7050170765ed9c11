using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using static Sluice.IntegrationTests.SinkConformance.ConformanceRows;

namespace Sluice.IntegrationTests.SinkConformance;

// Every mirror sink, the same tests: one class per sink so each shows under its own name.
public sealed class PostgresMirrorConformance : MirrorConformance<PostgresSinkFixture>;

public sealed class ClickHouseMirrorConformance : MirrorConformance<ClickHouseSinkFixture>;

public sealed class LakeMirrorConformance : MirrorConformance<LakeSinkFixture>;

/// <summary>
/// What every mirror sink (<c>mode: mirror</c>) must hold, through the real pipeline runner against the real server:
/// the source table's final state, whatever order and copies the changes come in. In cluster mode a batch can hold a
/// copy of an already committed change after newer changes of its key (JetStream's redelivery of a batch that
/// outlived its ack wait, a fenced worker's messages) and a change the slot's holder published again after a newer
/// one (docs/SCALING.md, "Mirrors and a redelivered copy inside one batch").
/// </summary>
public abstract class MirrorConformance<TFixture> : IAsyncLifetime where TFixture : SinkFixture, IMirrorFixture, new()
{
    private TFixture Fixture { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Fixture.DisposeAsync();

    /// <summary>One change: its op, row (a null name with <paramref name="NameUnchanged"/>: a TOASTed value not carried) and position.</summary>
    private sealed record Change(string Op, long Id, string? Name, long? Qty, long Lsn, long Seq, bool NameUnchanged = false);

    private static RecordBatch Batch(long position, params Change[] rows)
    {
        var n = rows.Length;
        return new RecordBatch(new ColumnBatch(MirrorBatches.Schema,
        [
            rows.Select(r => r.Op == "t" ? null : (long?)r.Id).ToArray(), rows.Select(r => r.Name).ToArray(), rows.Select(r => r.Qty).ToArray(),
            rows.Select(r => r.Op).ToArray(), rows.Select(r => (long?)r.Lsn).ToArray(), rows.Select(r => (long?)r.Seq).ToArray(),
            rows.Select(r => (long?)r.Lsn).ToArray(), rows.Select(_ => (DateTime?)Item.T0).ToArray(),
            rows.Select(r => r.Op == "d" ? $"{{\"id\":{r.Id}}}" : null).ToArray(), rows.Select(r => r.NameUnchanged ? "[\"name\"]" : null).ToArray(),
        ], n), position);
    }

    // The source's history: a row before a truncate; inserts; an update, a delete, a key change (3 -> 4, its name
    // TOASTed and not carried), an update not carrying the name; the deleted key inserted again; an update of the moved
    // row not carrying the name.
    private static readonly Change Before = new("c", 9, "z", 9, 5, 1);
    private static readonly Change Truncate = new("t", 0, null, null, 6, 1);
    private static readonly Change[] Inserts = [new("c", 1, "a", 1, 10, 1), new("c", 2, "b", 2, 10, 2), new("c", 3, "c", 3, 10, 3), new("c", 5, "e", 5, 10, 4)];
    private static readonly Change[] Changes =
    [
        new("u", 1, "a2", 10, 20, 1), new("d", 2, null, null, 20, 2), new("d", 3, null, null, 20, 3), new("c", 4, null, 4, 20, 4, NameUnchanged: true),
        new("u", 5, null, 50, 21, 1, NameUnchanged: true),
    ];

    private static readonly Change Again = new("c", 2, "b-again", 22, 30, 1);
    private static readonly Change Moved = new("u", 4, null, 44, 32, 1, NameUnchanged: true);
    private static readonly string[] Final = ["id=1 name=a2 qty=10", "id=2 name=b-again qty=22", "id=4 name=c qty=44", "id=5 name=e qty=50"];

    [Fact]
    public async Task Copies_of_committed_changes_after_newer_ones_in_a_batch_leave_the_sources_final_state()
    {
        var batches = new List<RecordBatch>
        {
            Batch(1, [Before, Truncate, .. Inserts]),
            // The first batch again (a redelivery) after the newer changes: in batch order its inserts come last.
            Batch(2, [.. Changes, .. Inserts, Truncate, Before]),
            // Copies of the second batch's delete and key change around new changes, and of the update not carrying the name.
            Batch(3, [Again, Changes[1], Changes[3], Moved, Changes[4], Changes[2]]),
        };
        await PipelineRun.OnceAsync(Fixture, Fixture.CreateMirror(), batches, "mirror");

        (await Fixture.ReadMirrorAsync()).ShouldBe(Final.ToList(), "the source's rows: no copy of an older change won over a newer one");
    }

    [Fact]
    public async Task A_change_that_comes_after_a_newer_one_of_its_key_is_applied_before_it()
    {
        // The slot's holder published a batch again after a failed acknowledgement: what JetStream stored only the
        // second time comes after what it stored the first, one delivery each, in one batch or in two.
        var batches = new List<RecordBatch>
        {
            Batch(1, [Before, Truncate, Inserts[3], Inserts[2], Inserts[0], Inserts[1]]),
            Batch(2, [Changes[4], Changes[3], Changes[0], Changes[2], Changes[1]]),
            Batch(3, [Moved]),
            Batch(4, [Again]),
        };
        await PipelineRun.OnceAsync(Fixture, Fixture.CreateMirror(), batches, "mirror");

        (await Fixture.ReadMirrorAsync()).ShouldBe(Final.ToList(), "the source's rows, each key's changes applied in their order");
    }

    /// <summary>Each batch its own write, in order, by one sink: no joining may put two of them in one batch.</summary>
    private async Task WriteEachAsync(params RecordBatch[] batches)
    {
        await using var sink = Fixture.CreateMirror();
        foreach (var batch in batches) { await sink.WriteAsync(batch, "mirror", CancellationToken.None); }
    }

    [Fact]
    public async Task A_change_that_comes_in_a_batch_after_a_newer_change_of_another_key_is_applied()
    {
        // The slot's holder published a batch again after a NATS node was lost: key 1's insert was stored after key 2's
        // newer one, and a consumer's batch ended between them. Key 3 was deleted before its older insert was stored:
        // that insert must not bring it back.
        await WriteEachAsync(
            Batch(1, new Change("c", 2, "b", 2, 20, 1)),
            Batch(2, new Change("c", 1, "a", 1, 10, 1)),
            Batch(3, new Change("d", 3, null, null, 40, 1)),
            Batch(4, new Change("c", 3, "c", 3, 30, 1)),
            Batch(5, new Change("u", 2, "b2", 22, 50, 1)),
            Batch(6, new Change("u", 2, "b1", 21, 45, 1)));

        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=a qty=1", "id=2 name=b2 qty=22"], "each key's newest change, whatever the order its table's changes came in");
    }

    [Fact]
    public async Task A_truncate_keeps_out_older_changes_and_keeps_newer_rows_whatever_order_they_come_in()
    {
        await WriteEachAsync(
            Batch(1, new Change("c", 1, "a", 1, 10, 1)),
            // Newer than the truncate and stored before it: the truncate must not remove it.
            Batch(2, new Change("c", 4, "d", 4, 70, 1)),
            Batch(3, new Change("t", 0, null, null, 60, 1)),
            // Older than the truncate and stored after it: a key the truncate did not find (5), and one it removed (1).
            Batch(4, new Change("c", 5, "e", 5, 55, 1), new Change("u", 1, "a2", 2, 50, 1)));

        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=4 name=d qty=4"], "the rows after the truncate, none of the changes before it");
    }

    [Fact]
    public async Task A_copy_of_an_earlier_change_of_a_transaction_in_a_later_batch_does_not_win_over_its_later_changes()
    {
        // One transaction (one _lsn) updates key 1 twice and inserts then deletes key 2; copies of its earlier changes come again later.
        await WriteEachAsync(
            Batch(1, new Change("c", 1, "a", 1, 10, 1), new Change("u", 1, "a2", 2, 10, 2), new Change("c", 2, "b", 2, 10, 3), new Change("d", 2, null, null, 10, 4)),
            Batch(2, new Change("c", 1, "a", 1, 10, 1)),
            Batch(3, new Change("c", 2, "b", 2, 10, 3)));

        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=a2 qty=2"], "the transaction's last change of each key, by _seq");
    }

    [Fact]
    public async Task A_change_stored_late_changes_nothing_after_the_mirror_folded_its_keys_delete_and_the_truncate()
    {
        // The table was truncated at 20 (key 1 gone); key 3 inserted at 30, updated at 35 (its name not carried) and
        // deleted at 40; key 5 inserted at 15. The stream stored key 3's insert and update and key 5's insert only after
        // the delete and the truncate, and the mirror compacted its history (the lake folded it) in between.
        await WriteEachAsync(
            Batch(1, new Change("c", 1, "a", 1, 10, 1)),
            Batch(2, new Change("t", 0, null, null, 20, 1)),
            Batch(3, new Change("d", 3, null, null, 40, 1)),
            Batch(4, new Change("c", 4, "d", 4, 70, 1)));
        await Fixture.FoldAsync();
        await WriteEachAsync(
            Batch(5, new Change("c", 3, "c", 3, 30, 1)),
            Batch(6, new Change("u", 3, null, 33, 35, 1, NameUnchanged: true), new Change("c", 5, "e", 5, 15, 1)));

        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=4 name=d qty=4"], "key 3 stays deleted, keys 1 and 5 truncated");
        Fixture.Engine.Services.DeadLetters.Count(null, DeadLetterStore.Pending).ShouldBe(0, "a change older than what the mirror holds is left out, not refused");
    }

    [Fact]
    public async Task A_late_older_update_leaves_the_newer_values_also_one_that_did_not_carry_a_value_and_after_a_fold()
    {
        // Key 1: inserted at 10, its qty updated at 20 (the name not carried), renamed at 30; key 2: inserted at 10, its
        // qty updated at 35 (the name not carried), renamed at 40. The stream stored each key's older update after the
        // newer one: whatever name it is given, it must not replace the newer row; after a fold too, and with copies.
        await WriteEachAsync(
            Batch(1, new Change("c", 1, "a", 1, 10, 1), new Change("c", 2, "b", 2, 10, 2)),
            Batch(2, new Change("u", 1, "a3", 3, 30, 1), new Change("u", 2, "b2", 22, 40, 1)),
            Batch(3, new Change("u", 1, null, 2, 20, 1, NameUnchanged: true)));
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=a3 qty=3", "id=2 name=b2 qty=22"], "the newer rows");

        await Fixture.FoldAsync();
        await WriteEachAsync(
            Batch(4, new Change("u", 1, null, 2, 20, 1, NameUnchanged: true), new Change("c", 1, "a", 1, 10, 1)),
            Batch(5, new Change("u", 2, null, 21, 35, 1, NameUnchanged: true)));
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=a3 qty=3", "id=2 name=b2 qty=22"], "the newer rows, after a fold");
        Fixture.Engine.Services.DeadLetters.Count(null, DeadLetterStore.Pending).ShouldBe(0);
    }
}
