using Sluice.Core.Schema;

namespace Sluice.Tests.Core;

/// <summary>A batch of changes reduced to what a mirror applies: net effect per key, truncates, key changes, unchanged values.</summary>
public sealed class MirrorChangesTests
{
    private static readonly TableSchema Schema = new("t", new FieldSpec[] { new("id", FieldType.Integer, false), new("title", FieldType.String, false), new("n", FieldType.Integer, false) }.Concat(ChangeEnvelope.Fields).ToList())
    {
        Key = ["id"],
    };

    private sealed record Change(string Op, long Id, string? Title, long? N, long Lsn, long Seq, string? Unchanged = null);

    private static ColumnBatch Batch(params Change[] changes)
    {
        var b = new ColumnBatchBuilder(Schema, 16);
        foreach (var c in changes)
        {
            ((ValueColumnBuilder<long>)b[0]).Set(c.Id);
            if (c.Title is not null) { ((TypedColumnBuilder<string>)b[1]).Set(c.Title); }
            if (c.N is { } n) { ((ValueColumnBuilder<long>)b[2]).Set(n); }
            ((TypedColumnBuilder<string>)b[3]).Set(c.Op);
            ((ValueColumnBuilder<long>)b[4]).Set(c.Lsn);
            ((ValueColumnBuilder<long>)b[5]).Set(c.Seq);
            if (c.Unchanged is not null) { ((TypedColumnBuilder<string>)b[9]).Set(c.Unchanged); }
            b.CommitRow();
        }

        return b.Flush();
    }

    private static List<string> Rows(ColumnBatch batch) =>
        Enumerable.Range(0, batch.Count).Select(r => string.Join("|", batch.Schema.Fields.Select((f, c) => batch.Value(c, r)?.ToString() ?? "null"))).ToList();

    [Fact]
    public void Each_key_ends_at_its_last_change_and_a_delete_wins_over_earlier_upserts()
    {
        var plan = MirrorChanges.Plan(Batch(
            new("c", 1, "a", 1, 10, 1), new("u", 1, "b", 2, 10, 2), new("c", 2, "x", 5, 11, 1), new("d", 2, null, null, 12, 1), new("u", 1, "c", 3, 12, 2)), ["id"]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["1|c|3|12|2|null|null"]);
        segment.Upserts.Schema.Fields.Select(f => f.Name).ShouldBe(["id", "title", "n", "_lsn", "_seq", "_txid", "_commit_ts"]);
        Rows(segment.Deletes).ShouldBe(["2|12|1"]);
        segment.TruncateAt.ShouldBeNull();
        segment.Kept.ShouldBe([null]);
    }

    [Fact]
    public void A_truncate_ends_a_segment_and_what_follows_it_starts_the_next()
    {
        var plan = MirrorChanges.Plan(Batch(new("c", 1, "a", 1, 10, 1), new("t", 0, null, null, 11, 1), new("c", 2, "b", 2, 11, 2)), ["id"]);

        plan.Count.ShouldBe(2);
        Rows(plan[0].Upserts).ShouldBe(["1|a|1|10|1|null|null"]);
        plan[0].TruncateAt.ShouldBe(new ChangePosition(11, 1));
        Rows(plan[1].Upserts).ShouldBe(["2|b|2|11|2|null|null"]);
        plan[1].TruncateAt.ShouldBeNull();
    }

    [Fact]
    public void Changes_before_the_applied_position_are_skipped_and_the_one_at_it_applied_again()
    {
        var plan = MirrorChanges.Plan(Batch(new("c", 1, "a", 1, 10, 1), new("c", 2, "b", 2, 10, 2), new("d", 1, null, null, 11, 1)), ["id"], new ChangePosition(10, 2));

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["2|b|2|10|2|null|null"]);
        Rows(segment.Deletes).ShouldBe(["1|11|1"]);
    }

    [Fact]
    public void An_unchanged_column_takes_the_value_an_earlier_change_of_the_batch_gave_it_else_is_kept_as_stored()
    {
        var plan = MirrorChanges.Plan(Batch(
            new("u", 1, "new", 1, 10, 1), new("u", 1, null, 2, 11, 1, "[\"title\"]"),
            new("u", 2, null, 7, 11, 2, "[\"title\"]")), ["id"]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["1|new|2|11|1|null|null", "2|null|7|11|2|null|null"]);
        segment.Kept[0].ShouldBeNull();
        segment.Kept[1].ShouldBe([1]);
        Rows(segment.KeptFrom).ShouldBe(["1|10|1", "2|11|2"], "the key of the row kept from, and the position of the change that names it");
        var staged = MirrorChanges.Staged(segment);
        staged.Schema.Fields.Select(f => f.Name).ShouldBe(["id", "title", "n", "_lsn", "_seq", "_txid", "_commit_ts", "_sluice_from_id", "_sluice_from__lsn", "_sluice_from__seq", "_sluice_keep_title"]);
        Rows(staged)[1].ShouldEndWith("|2|True");
        Rows(staged)[0].ShouldEndWith("|1|False");
    }

    [Fact]
    public void A_key_change_moves_the_row_and_its_unchanged_values_come_from_the_old_key()
    {
        // Stored: key 3 with a TOASTed title. UPDATE SET id = 100 WHERE id = 3 (title untouched), then a key change of a
        // row whose title the batch itself set before.
        var plan = MirrorChanges.Plan(Batch(
            new("d", 3, null, null, 20, 1), new("c", 100, null, 5, 20, 2, "[\"title\"]"),
            new("u", 4, "set", 1, 21, 1), new("d", 4, null, null, 22, 1), new("c", 40, null, 1, 22, 2, "[\"title\"]")), ["id"]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["100|null|5|20|2|null|null", "40|set|1|22|2|null|null"]);
        segment.Kept[0].ShouldBe([1]);
        segment.Kept[1].ShouldBeNull();
        Rows(segment.KeptFrom)[0].ShouldBe("3|20|1");
        Rows(segment.Deletes).ShouldBe(["3|20|1", "4|22|1"]);
    }

    [Fact]
    public void A_delete_that_ends_the_batch_is_preceded_by_the_rows_last_version_so_the_sink_removes_that_one()
    {
        // The delete may be a key change's first half, its insert in the next batch: the sink must remove (and can keep)
        // the row as this batch left it. A delete elsewhere in the batch needs no such upsert.
        var plan = MirrorChanges.Plan(Batch(
            new("u", 1, "early", 1, 10, 1), new("d", 1, null, null, 11, 1),
            new("u", 2, "new", 2, 12, 1), new("d", 2, null, null, 13, 1)), ["id"]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["2|new|2|12|1|null|null"]);
        Rows(segment.Deletes).ShouldBe(["1|11|1", "2|13|1"]);
    }

    [Fact]
    public void The_state_schema_keeps_the_table_and_the_position_columns_and_the_key()
    {
        var state = MirrorChanges.StateSchema(Schema);
        state.Fields.Select(f => f.Name).ShouldBe(["id", "title", "n", "_lsn", "_seq", "_txid", "_commit_ts"]);
        state.Key.ShouldBe(["id"]);
        MirrorChanges.Last(Batch(new("c", 1, "a", 1, 10, 1), new("c", 2, "a", 1, 10, 2))).ShouldBe(new ChangePosition(10, 2));
    }

    /// <summary>A plan as text: per segment its upserts, kept columns, where they are kept from, deletes and truncate.</summary>
    private static List<string> Text(IReadOnlyList<MirrorSegment> plan) => plan.Select(s =>
        $"upserts {string.Join(", ", Rows(s.Upserts))}; kept {string.Join(", ", s.Kept.Select(k => k is null ? "-" : string.Join("+", k)))}; " +
        $"from {string.Join(", ", Rows(s.KeptFrom))}; deletes {string.Join(", ", Rows(s.Deletes))}; truncate {s.TruncateAt}").ToList();

    /// <summary>The batch with copies (and its changes in any order) plans exactly as the source's history in order, each change once.</summary>
    private static IReadOnlyList<MirrorSegment> PlansAsHistory(Change[] history, Change[] delivered)
    {
        var expected = MirrorChanges.Plan(Batch(history), ["id"]);
        var plan = MirrorChanges.Plan(Batch(delivered), ["id"]);
        Text(plan).ShouldBe(Text(expected));
        return plan;
    }

    [Fact]
    public void A_copy_of_an_older_change_after_newer_changes_of_its_key_leaves_the_newest()
    {
        // JetStream redelivered the batch that held @10 after @20 was read: the copy comes last in the batch.
        Change[] history = [new("c", 1, "a", 1, 10, 1), new("u", 1, "b", 2, 20, 1), new("c", 2, "x", 9, 20, 2)];
        var plan = PlansAsHistory(history, [.. history, new("c", 1, "a", 1, 10, 1)]);

        Rows(plan.ShouldHaveSingleItem().Upserts).ShouldBe(["1|b|2|20|1|null|null", "2|x|9|20|2|null|null"]);
        PlansAsHistory(history[1..], [history[1], history[0], history[2]]);
    }

    [Fact]
    public void A_copy_of_a_delete_after_the_key_was_inserted_again_leaves_the_row()
    {
        Change[] history = [new("d", 1, null, null, 20, 1), new("c", 1, "again", 3, 30, 1)];
        var plan = PlansAsHistory(history, [.. history, new("d", 1, null, null, 20, 1)]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["1|again|3|30|1|null|null"]);
        segment.Deletes.Count.ShouldBe(0);
    }

    [Fact]
    public void A_copy_of_a_key_changes_insert_half_neither_moves_the_row_again_nor_loses_its_kept_values()
    {
        // UPDATE SET id = 100 WHERE id = 3 (title TOASTed, not carried), then an update of 100 not carrying it either.
        Change[] history = [new("d", 3, null, null, 20, 1), new("c", 100, null, 5, 20, 2, "[\"title\"]"), new("u", 100, null, 7, 21, 1, "[\"title\"]")];
        var plan = PlansAsHistory(history, [history[0], history[1], history[2], history[1]]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["100|null|7|21|1|null|null"]);
        segment.Kept.ShouldBe([[1]]);
        Rows(segment.KeptFrom).ShouldBe(["3|20|1"], "the title is the old key's as stored");
        Rows(segment.Deletes).ShouldBe(["3|20|1"]);
        // The copy of the whole key change first, then the update (a batch cut between them): the same.
        PlansAsHistory(history, [history[2], history[0], history[1], history[0], history[1]]);
    }

    [Fact]
    public void A_copy_of_a_change_before_a_truncate_does_not_bring_its_row_back_after_it()
    {
        Change[] history = [new("c", 1, "a", 1, 10, 1), new("t", 0, null, null, 11, 1), new("c", 2, "b", 2, 11, 2)];
        var plan = PlansAsHistory(history, [.. history, new("c", 1, "a", 1, 10, 1), new("t", 0, null, null, 11, 1)]);

        plan.Count.ShouldBe(2);
        Rows(plan[1].Upserts).ShouldBe(["2|b|2|11|2|null|null"]);
    }

    [Fact]
    public void Snapshot_rows_share_a_position_across_keys_and_a_copy_of_one_after_a_streamed_change_of_its_key_is_dropped()
    {
        Change[] snapshot = [new("r", 1, "a", 1, 5, 0), new("r", 2, "b", 2, 5, 0), new("r", 3, "c", 3, 5, 0)];
        var batch = Batch(snapshot);
        MirrorChanges.InPositionOrder(batch, ["id"]).ShouldBeSameAs(batch, "in order, no copies: the batch as it is");
        Rows(MirrorChanges.Plan(batch, ["id"]).ShouldHaveSingleItem().Upserts).ShouldBe(["1|a|1|5|0|null|null", "2|b|2|5|0|null|null", "3|c|3|5|0|null|null"]);

        Change[] history = [.. snapshot, new("u", 2, "b2", 20, 10, 1)];
        var plan = PlansAsHistory(history, [.. history, snapshot[1], snapshot[0]]);
        Rows(plan.ShouldHaveSingleItem().Upserts).ShouldBe(["1|a|1|5|0|null|null", "3|c|3|5|0|null|null", "2|b2|20|10|1|null|null"]);
    }

    [Fact]
    public void A_chunks_row_keeping_a_toasted_value_comes_after_the_streamed_changes_between_its_watermarks_whatever_the_batch_order()
    {
        // A chunk's rows enter at its high watermark (_seq 0), after every change between the watermarks: a key the
        // stream changed there, never carrying its title, comes as an _op = r row with only the title (the rest marked
        // unchanged), so the streamed values stay and the title is the chunk's.
        Change[] history = [new("u", 1, null, 2, 30, 1, "[\"title\"]"), new("r", 1, "toast", null, 40, 0, "[\"n\"]"), new("u", 1, null, 3, 41, 1, "[\"title\"]")];
        var plan = PlansAsHistory(history, [history[1], history[0], history[2], history[0], history[1]]);

        var segment = plan.ShouldHaveSingleItem();
        Rows(segment.Upserts).ShouldBe(["1|toast|3|41|1|null|null"], "the title the chunk read, the n the stream set last");
        segment.Kept.ShouldBe([null], "every value is the batch's: nothing is kept as stored");
    }

    [Fact]
    public void A_change_stored_after_a_newer_one_of_its_batch_is_applied_before_it()
    {
        // The slot's holder published a batch again after a failed acknowledgement: @20:2 was stored the first time,
        // @20:1 only the second, after it. Not a copy, the one delivery of @20:1.
        Change[] history = [new("c", 1, "a", 1, 20, 1), new("u", 1, "b", 2, 20, 2)];
        Rows(PlansAsHistory(history, [history[1], history[0]]).ShouldHaveSingleItem().Upserts).ShouldBe(["1|b|2|20|2|null|null"]);
    }
}
