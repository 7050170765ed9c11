using Sluice.Core.Config;

namespace Sluice.Connectors.Lake;

/// <summary>Options of the <c>lake</c> sink: which zone its tables land in, how rows are partitioned, and how small files are compacted.</summary>
public sealed class LakeSinkOptions
{
    /// <summary>The lake zone (schema) the tables land in (required): a batch table <c>events</c> becomes <c>&lt;zone&gt;.events</c>.</summary>
    public string Zone { get; init; } = "";

    /// <summary>The timestamp column whose UTC date is a row's partition (<c>date=YYYY-MM-DD</c>) (required; every table must have it).</summary>
    public string PartitionBy { get; init; } = "";

    /// <summary>Optional renames, batch table name to lake table name.</summary>
    public IReadOnlyDictionary<string, string> Tables { get; init; } = new Dictionary<string, string>();

    /// <summary>The column holding each row's source position (default <c>_offset</c>): rows at or below the sink's checkpoint are skipped on replay. Tables without it rely on batch positions alone.</summary>
    public string PositionColumn { get; init; } = "_offset";

    /// <summary>A partition is compacted once it has this many small files (default 8).</summary>
    public int CompactMinFiles { get; init; } = 8;

    /// <summary>Files under this many rows count as small (default 250,000).</summary>
    public long CompactSmallRows { get; init; } = 250_000;

    /// <summary>How often the sink looks for partitions to compact, and sweeps replaced files past their grace (default 5 s; 0 turns compaction off).</summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromSeconds(5);

    public static LakeSinkOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var tables = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map.Map("tables") is { } renames)
        {
            foreach (var key in renames.Keys.ToList())
            {
                var value = renames.String(key) ?? "";
                if (!Connectors.HttpIngest.HttpIngestOptions.IdentifierRegex().IsMatch(value)) { renames.Error(key, $"'{value}' must be a table name (letters, digits, '_')"); }
                tables[key] = value;
            }

            renames.Done();
        }

        var compact = map.Map("compaction");
        var options = new LakeSinkOptions
        {
            Zone = map.RequiredString("zone"),
            PartitionBy = map.RequiredString("partition_by"),
            Tables = tables,
            PositionColumn = map.String("position_column", "_offset") ?? "_offset",
            CompactMinFiles = compact?.Int("min_files", 8, 2, 10_000) ?? 8,
            CompactSmallRows = compact?.Int("small_rows", 250_000, 1, int.MaxValue) ?? 250_000,
            CompactInterval = compact?.Duration("interval", TimeSpan.FromSeconds(5)) ?? TimeSpan.FromSeconds(5),
        };
        compact?.Done();
        if (options.Zone.Length > 0 && !Connectors.HttpIngest.HttpIngestOptions.IdentifierRegex().IsMatch(options.Zone))
        {
            map.Error("zone", $"'{options.Zone}' must be letters, digits and '_'");
        }

        return options;
    }
}
