using Sluice.Cluster;
using Sluice.Connectors.Nats;
using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Tests.Cluster;

/// <summary>How a CDC pipeline's changes go to JetStream (<c>SLUICE_CLUSTER_CDC=jetstream</c>): partitions, ids, and the messages read back.</summary>
public sealed class CdcChangeLogTests
{
    private static readonly ClusterOptions Cluster = ClusterOptions.FromEnvironment(n => n == ClusterOptions.NatsVariable ? "nats://127.0.0.1:1" : null);

    private static readonly TableSchema Items = new("items", new FieldSpec[]
    {
        new("id", FieldType.Integer, true), new("name", FieldType.String, false), new("price", FieldType.Decimal, false),
        new("score", FieldType.Double, false), new("seen", FieldType.Timestamp, false), new("day", FieldType.Date, false),
        new("ok", FieldType.Boolean, false),
    }.Concat(ChangeEnvelope.Fields).ToList()) { Key = ["id"] };

    /// <summary>Rows 1..n inserted in one transaction at LSN 0x500, then a truncate of the table.</summary>
    private static ColumnBatch Changes(int n)
    {
        var rows = n + 1;
        var op = new string?[rows];
        var lsn = new long?[rows];
        var seq = new long?[rows];
        var id = new long?[rows];
        for (var r = 0; r < rows; r++) { (op[r], lsn[r], seq[r]) = (r < n ? ChangeEnvelope.Insert : ChangeEnvelope.Truncate, 0x500, r + 1); }
        for (var r = 0; r < n; r++) { id[r] = r + 1; }
        var name = Enumerable.Range(0, rows).Select(r => r < n ? $"item {r}" : null).ToArray();
        var day = new DateOnly?[rows];
        var dayVerbatim = new string?[rows];
        dayVerbatim[0] = "infinity";
        day[1] = new DateOnly(2026, 12, 6);
        return new ColumnBatch(Items, [
            id, name, new string?[rows], Enumerable.Range(0, rows).Select(r => (double?)(r + 0.1)).ToArray(),
            Enumerable.Range(0, rows).Select(r => (DateTime?)new DateTime(2026, 12, 6, 5, 0, 0, DateTimeKind.Utc).AddTicks(r)).ToArray(), day, new bool?[rows],
            op, lsn, seq, new long?[rows], new DateTime?[rows], new string?[rows], new string?[rows],
        ], null, rows, [null, null, null, null, null, dayVerbatim, null, null, null, null, null, null, null, null]);
    }

    [Fact]
    public async Task A_tables_changes_go_to_partitions_by_key_and_a_mirrored_tables_all_to_one_with_its_truncate()
    {
        await using var byKey = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var spread = byKey.Messages(new RecordBatch(Changes(64), 0x500));
        spread.Select(m => m.Partition).Distinct().Count().ShouldBeGreaterThan(4, "one table's keys are spread over partitions");
        spread.All(m => m.Partition >= 0 && m.Partition < Cluster.Partitions).ShouldBeTrue();

        await using var mirrored = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), t => t == "items");
        mirrored.Messages(new RecordBatch(Changes(64), 0x500)).Select(m => m.Partition).Distinct().Count()
            .ShouldBe(1, "a mirrored table's rows and its truncate are in one partition, in the WAL's order");
    }

    [Fact]
    public async Task A_changes_id_is_its_slot_and_position_so_a_republish_is_stored_once_and_a_snapshot_row_has_none()
    {
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var messages = log.Messages(new RecordBatch(Changes(3), 0x500));
        messages.Select(m => m.MsgId).ShouldBe(["slot1:500:1", "slot1:500:2", "slot1:500:3", "slot1:500:4"]);
        log.Messages(new RecordBatch(Changes(3), 0x500)).Select(m => m.MsgId).ShouldBe(messages.Select(m => m.MsgId), "the same change read again has the same id");

        var snapshot = Changes(1);
        snapshot.Strings(Items.IndexOf(ChangeEnvelope.Op))[0] = ChangeEnvelope.Read;
        log.Messages(new RecordBatch(snapshot, 0x500))[0].MsgId.ShouldBeNull("snapshot rows share a position: an id would drop all but one");
    }

    [Fact]
    public async Task A_backfilled_rows_id_is_its_backfill_and_key_and_it_goes_to_the_partition_of_its_keys_changes()
    {
        // A cluster's postgres_backfill publishes its pages into the change stream (BackfillLog): its rows (_op r, no
        // position) are named by the backfill and their key, so the page a take-over publishes again is stored once.
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var page = Changes(3);
        var (op, lsn) = (page.Strings(Items.IndexOf(ChangeEnvelope.Op)), page.Column<long>(Items.IndexOf(ChangeEnvelope.Lsn)));
        for (var r = 0; r < 3; r++) { (op[r], lsn[r]) = (ChangeEnvelope.Read, 0); }
        var rows = new RecordBatch(page.Gather([0, 1, 2]), 0);
        var messages = log.Messages(rows, (table, row) => BackfillLog.Id("b1", ChangeMessages.Text(table, "id", row)));
        messages.Select(m => m.MsgId).ShouldBe(["backfill:b1:1", "backfill:b1:2", "backfill:b1:3"]);
        log.Messages(rows, (table, row) => BackfillLog.Id("b1", ChangeMessages.Text(table, "id", row))).Select(m => m.MsgId)
            .ShouldBe(messages.Select(m => m.MsgId), "the same page published again has the same ids");
        messages.Select(m => m.Partition).ShouldBe(log.Messages(new RecordBatch(Changes(3), 0x500)).Take(3).Select(m => m.Partition),
            "a key's backfilled row and its changes are in one partition");
    }

    /// <summary>Rows 1..n of a snapshot (<c>_op</c> = r) entering the stream at <paramref name="lsn"/>, read by <paramref name="name"/>.</summary>
    private static RecordBatch Snapshot(int n, long lsn, string name, TableSchema? schema = null)
    {
        var rows = Changes(n);
        if (schema is not null) { rows = new ColumnBatch(schema, Enumerable.Range(0, schema.Fields.Count).Select(c => rows.Columns[c]).ToArray(), null, rows.Count); }
        var (op, at) = (rows.Strings(Items.IndexOf(ChangeEnvelope.Op)), rows.Column<long>(Items.IndexOf(ChangeEnvelope.Lsn)));
        for (var r = 0; r < n; r++) { (op[r], at[r]) = (ChangeEnvelope.Read, lsn); }
        return new RecordBatch(rows.Gather(Enumerable.Range(0, n).ToArray()), lsn) { Snapshots = [new SnapshotRows(rows.Schema.Table, lsn, name)] };
    }

    [Fact]
    public async Task A_snapshot_rows_id_is_its_snapshot_and_key_so_a_chunk_read_again_is_stored_once_and_another_snapshot_is_not_dropped()
    {
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var first = log.Messages(Snapshot(3, 0x700, "q12")).Select(m => m.MsgId).ToList();
        first.ShouldAllBe(id => id != null && id.StartsWith("slot1:q12:", StringComparison.Ordinal));
        first.Distinct().Count().ShouldBe(3, "each row of a snapshot has an id of its own");
        // Read again by the slot's next holder: the chunk enters the stream at another position, with the same rows.
        log.Messages(Snapshot(3, 0x900, "q12")).Select(m => m.MsgId).ShouldBe(first, "the same snapshot's rows read again are stored once");
        log.Messages(Snapshot(2, 0x900, "q12")).Select(m => m.MsgId).ShouldBe(first.Take(2), "a row's id does not depend on the rows around it");
        log.Messages(Snapshot(3, 0x700, "q13")).Select(m => m.MsgId).Intersect(first).ShouldBeEmpty("a second snapshot of the table is not taken for the first");
        log.Messages(Snapshot(3, 0x700, "i4f0")).Select(m => m.MsgId).Intersect(first).ShouldBeEmpty();

        // Another table with the same keys: other ids.
        var other = new TableSchema("others", Items.Fields) { Key = ["id"] };
        log.Messages(Snapshot(3, 0x700, "q12", other)).Select(m => m.MsgId).Intersect(first).ShouldBeEmpty();

        // A snapshot row the batch names no snapshot for (another _lsn) keeps no id, as before.
        var unnamed = Snapshot(1, 0x700, "q12") with { Snapshots = [new SnapshotRows("items", 0x701, "q12")] };
        log.Messages(unnamed)[0].MsgId.ShouldBeNull();

        // Without a key: the row's place, the same when the batch is published again, distinct per row.
        var keyless = new TableSchema("items", Items.Fields);
        var places = log.Messages(Snapshot(3, 0x700, "i4f0", keyless)).Select(m => m.MsgId).ToList();
        places.Distinct().Count().ShouldBe(3);
        log.Messages(Snapshot(3, 0x700, "i4f0", keyless)).Select(m => m.MsgId).ShouldBe(places);
        places.ShouldAllBe(id => id!.StartsWith("slot1:i4f0:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_consumer_reads_back_every_value_exactly_and_keeps_the_order_between_tables()
    {
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var items = Changes(2);
        var other = new ColumnBatch(new TableSchema("other", [new FieldSpec("x", FieldType.Integer, false)]), [new long?[] { 7 }], 1);
        var decoder = new ChangeDecoder();
        foreach (var m in log.Messages(new RecordBatch([items, other, items], 0x500))) { decoder.Add(m.Data, 0).ShouldBeTrue(); }
        decoder.Add("not json"u8.ToArray(), 1).ShouldBeFalse();

        var back = decoder.Flush();
        back.Select(t => t.Schema.Table).ShouldBe(["items", "other", "items"]);
        back[0].Schema.Key.ShouldBe(["id"]);
        back[0].Schema.Fields.ShouldBe(Items.Fields);
        back[0].Count.ShouldBe(3);
        for (var c = 0; c < Items.Fields.Count; c++)
        {
            for (var r = 0; r < 3; r++) { back[0].Value(c, r).ShouldBe(items.Value(c, r), $"{Items.Fields[c].Name}, row {r}"); }
        }

        back[0].Verbatim(Items.IndexOf("day"))![0].ShouldBe("infinity");
        back[1].Column<long>(0)[0].ShouldBe(7);
    }

    [Fact]
    public async Task For_a_lake_sink_each_row_carries_its_messages_jetstream_sequence_as_offset()
    {
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var decoder = new ChangeDecoder(sequences: true);
        var messages = log.Messages(new RecordBatch(Changes(2), 0x500));
        for (var i = 0; i < messages.Count; i++) { decoder.Add(messages[i].Data, 40 + i).ShouldBeTrue(); }

        var back = decoder.Flush().ShouldHaveSingleItem();
        back.Schema.Fields.Select(f => f.Name).ShouldBe(Items.Fields.Select(f => f.Name).Append("_offset"));
        back.Column<long>(back.Schema.IndexOf("_offset")).ShouldBe(new long?[] { 40, 41, 42 });
        back.Value(Items.IndexOf("name"), 1).ShouldBe("item 1", "the table's own values are as before");
        // Without a lake sink the rows are the source's, as in a single process.
        var plain = new ChangeDecoder();
        plain.Add(messages[0].Data, 40);
        plain.Flush()[0].Schema.Fields.ShouldBe(Items.Fields);
    }

    [Fact]
    public async Task Each_message_carries_the_relays_mark_and_the_consumer_proves_it_once_the_messages_stored_before_are_acknowledged()
    {
        await using var log = new CdcChangeLog(Cluster, "shop", "cdc", "slot1", 1000, TimeSpan.FromMilliseconds(100), _ => false);
        var decoder = new ChangeDecoder();
        decoder.Add(log.Messages(new RecordBatch(Changes(1), 0x500))[0].Data, 7).ShouldBeTrue();
        decoder.Settled.FirstUnacknowledged(100);
        decoder.Settled.Below.ShouldBeNull("a message without a mark (an older relay's) proves none");

        var messages = log.Messages(new RecordBatch(Changes(2), 0x500) { SettledBelow = 0x400 });
        decoder.Add(messages[0].Data, 10).ShouldBeTrue();
        decoder.Add(messages[1].Data, 11).ShouldBeTrue();
        decoder.Flush()[^1].Schema.Fields.ShouldBe(Items.Fields, "the mark is no column");
        decoder.Settled.FirstUnacknowledged(9);
        decoder.Settled.Below.ShouldBeNull("a message stored before the one carrying the mark is not acknowledged yet");
        decoder.Settled.FirstUnacknowledged(10);
        decoder.Settled.Below.ShouldBe(0x400, "every message stored before it is acknowledged: nothing below its mark can come any more");
    }

    [Fact]
    public void The_mark_keeps_one_candidate_and_never_falls()
    {
        var settled = new SettledChanges();
        settled.Seen(20, 0x300);
        settled.Seen(25, 0x500);
        settled.Seen(15, 0x200);
        settled.FirstUnacknowledged(24);
        settled.Below.ShouldBe(0x300, "the candidate's mark, once the stream's first unacknowledged message is past it");
        settled.Seen(30, 0x200);
        settled.FirstUnacknowledged(40);
        settled.Below.ShouldBe(0x300, "a lower mark proves nothing new");
        settled.Seen(50, 0x600);
        settled.Seen(45, 0x650);
        settled.FirstUnacknowledged(46);
        settled.Below.ShouldBe(0x650, "a higher mark of an earlier message replaces the candidate");
    }

    [Fact]
    public void The_cdc_setting_is_jetstream_unless_holder_is_asked_for_and_a_wrong_one_is_refused_naming_it()
    {
        ClusterOptions.FromEnvironment(n => n == ClusterOptions.NatsVariable ? "nats://127.0.0.1:1" : null).CdcThroughJetStream.ShouldBeTrue();
        ClusterOptions.FromEnvironment(n => n switch { ClusterOptions.NatsVariable => "nats://127.0.0.1:1", ClusterOptions.CdcVariable => "jetstream", _ => null })
            .CdcThroughJetStream.ShouldBeTrue();
        ClusterOptions.FromEnvironment(n => n switch { ClusterOptions.NatsVariable => "nats://127.0.0.1:1", ClusterOptions.CdcVariable => "holder", _ => null })
            .CdcThroughJetStream.ShouldBeFalse();
        Should.Throw<SluiceException>(() => ClusterOptions.FromEnvironment(n => n switch { ClusterOptions.NatsVariable => "nats://127.0.0.1:1", ClusterOptions.CdcVariable => "nats", _ => null }))
            .Message.ShouldContain("SLUICE_CLUSTER_CDC: 'nats' is not a way to run CDC");
    }
}
