using Sluice.Connectors.Postgres;
using Sluice.Core.Schema;

namespace Sluice.Tests.Cluster;

/// <summary>
/// Which row of a key the postgres sink writes when a batch holds it more than once. In cluster partitions a batch
/// (or a joined write) can hold a redelivery of older events after newer ones: their ack wait ran out while their
/// batch waited for the sinks, and they came again behind newer messages of the partition. The newest is then the
/// row of the highest <c>_offset</c> (its stream sequence), not the last one.
/// </summary>
public sealed class PostgresNewestPerKeyTests
{
    private static readonly TableSchema Versions = new("versions",
    [
        new FieldSpec("tenant_id", FieldType.String, true), new FieldSpec("key", FieldType.String, true),
        new FieldSpec("version", FieldType.Integer, true), new FieldSpec("_offset", FieldType.Integer, true),
    ]);

    /// <summary>What ClusterPartitionTests' batch held: versions 38-40 of k0 and k1 (sequences 290-298), then versions 1 and 37 of them again, redelivered.</summary>
    private static ColumnBatch Redelivered() => new(Versions,
    [
        new string?[] { "t2", "t2", "t2", "t2", "t2", "t2", "t2" },
        new string?[] { "k0", "k1", "k0", "k0", "k1", "k0", "k1" },
        new long?[] { 38, 38, 40, 1, 1, 37, 37 },
        new long?[] { 290L << 16, (290L << 16) + 1, 298L << 16, 1L << 16, (1L << 16) + 1, 277L << 16, (277L << 16) + 1 },
    ], 7);

    [Fact]
    public void By_offset_each_key_keeps_its_newest_event_though_older_ones_come_after_it()
    {
        var kept = PostgresSink.LastPerKey(Redelivered(), ["tenant_id", "key"], Versions.IndexOf("_offset"));

        kept.Count.ShouldBe(2);
        kept.Column<long>(2).ShouldBe([38L, 40L], "k1 at 38 (sequence 290), k0 at 40 (sequence 298), in the batch's order");
        kept.Value(1, 0).ShouldBe("k1");
    }

    [Fact]
    public void Without_offsets_the_last_row_of_a_key_wins_as_the_batches_came()
    {
        var kept = PostgresSink.LastPerKey(Redelivered(), ["tenant_id", "key"]);

        kept.Count.ShouldBe(2);
        kept.Column<long>(2).ShouldBe([37L, 37L]);
    }
}
