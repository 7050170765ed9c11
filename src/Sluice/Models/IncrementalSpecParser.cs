using Sluice.Core.Config;

namespace Sluice.Models;

/// <summary>Reads an incremental model's header keys (docs/reference/models.md); defaults are <see cref="IncrementalSpec"/>'s initialisers.</summary>
public static class IncrementalSpecParser
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference shows them.</summary>
    private static readonly IncrementalSpec Default = OptionDefaults.Of<IncrementalSpec>();

    /// <summary>The keys only an incremental model takes (another kind naming one is an error).</summary>
    public static readonly IReadOnlyList<string> OwnKeys = ["partition_by", "rewind_by", "update_existing"];

    private static readonly string[] MergeOnlyKeys = ["rewind_by", "surrogate_key", "update_existing"];

    internal const string UniqueKeyDoc = "Incremental: the key column(s) a run's rows are merged by (a keyed merge; or give partition_by). Snapshot (required): the column(s) naming what the versions are of.";

    internal const string SurrogateKeyDoc = "A BIGINT column the engine fills for new keys (max + 1, in key order) and keeps for existing ones (incremental with unique_key, snapshot).";

    internal const string OnSchemaChangeDoc = "Incremental and snapshot: what happens when the result's columns differ from the stored table (as dbt's on_schema_change): add new columns, follow the result, or stop the run.";

    public static IncrementalSpec Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var uniqueKey = map.StringList("unique_key", doc: UniqueKeyDoc);
        var partitionBy = map.String("partition_by", doc: "Incremental: a date column; a run as of D owns the rows whose column is D and replaces them all (instead of unique_key).");
        var rewindBy = map.String("rewind_by", doc: "Incremental with unique_key: a date column holding the as-of date of the run that wrote the row, so reprocessing from D removes what runs on or after D wrote.");
        var surrogate = map.String("surrogate_key", doc: SurrogateKeyDoc);
        ModelFileChecks.PlainColumns(map, "unique_key", uniqueKey.Concat([partitionBy, rewindBy, surrogate]));
        if ((uniqueKey.Count > 0) == (partitionBy is not null))
        {
            map.Error(uniqueKey.Count > 0 ? "partition_by" : "unique_key", "an incremental model merges by unique_key (keyed merge) or owns a date partition (partition_by): give exactly one of them");
        }
        else if (partitionBy is not null)
        {
            foreach (var key in MergeOnlyKeys.Where(map.Has)) { map.Error(key, "only applies to a keyed merge (unique_key), not to partition_by"); }
        }

        return new IncrementalSpec
        {
            UniqueKey = uniqueKey, PartitionBy = partitionBy, RewindBy = rewindBy, SurrogateKey = surrogate,
            UpdateExisting = map.Bool("update_existing", Default.UpdateExisting, doc: "Incremental with unique_key: true replaces the rows whose key exists; false keeps them and only inserts new keys."),
            OnSchemaChange = map.Enum("on_schema_change", Default.OnSchemaChange, doc: OnSchemaChangeDoc),
        };
    }
}
