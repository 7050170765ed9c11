using Sluice.Core.Config;

namespace Sluice.Connectors.Lake;

/// <summary>What a <c>lake</c> sink's tables hold.</summary>
public enum LakeSinkMode
{
    /// <summary>Every row as it arrives, partitioned by day (with a CDC source: every change, a change log).</summary>
    Changes,

    /// <summary>The current state of each source table by key (docs/CDC.md, "Mirrors"); needs a change source.</summary>
    Mirror,
}

/// <summary>Options of the <c>lake</c> sink: which zone its tables land in, how rows are partitioned, and how small files are compacted.</summary>
public sealed class LakeSinkOptions : Core.Pipeline.IChecksBatchTables, Core.Pipeline.ISkipsCommittedSequences
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly LakeSinkOptions Default = new();

    /// <summary>A change log partitions every table by the day of <c>partition_by</c>, which must be one of its timestamp columns.</summary>
    public string? Problem(Core.Schema.TableSchema table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (Mode == LakeSinkMode.Mirror || PartitionBy.Length == 0) { return null; }
        var index = table.IndexOf(PartitionBy);
        if (index >= 0 && table.Fields[index].Type == Core.Schema.FieldType.Timestamp) { return null; }
        var times = table.Fields.Where(f => f.Type == Core.Schema.FieldType.Timestamp).Select(f => f.Name).ToList();
        return $"lake sink {LakeSink.NameOf(Zone)}: table '{table.Table}' has no timestamp column '{PartitionBy}' to partition by (partition_by); " +
            (times.Count == 0 ? "it has no timestamp column at all" : $"its timestamp columns: {string.Join(", ", times)}");
    }

    /// <summary><c>changes</c> (default) or <c>mirror</c>.</summary>
    public LakeSinkMode Mode { get; init; } = LakeSinkMode.Changes;

    /// <summary>A mirror's key columns per batch table (<c>keys: { content: [content_id] }</c>); a table not named here is keyed by the source table's primary key.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Keys { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>The lake zone (schema) the tables land in (required): a batch table <c>events</c> becomes <c>&lt;zone&gt;.events</c>.</summary>
    public string Zone { get; init; } = "";

    /// <summary>The timestamp column whose UTC date is a row's partition (<c>date=YYYY-MM-DD</c>) (required; every table must have it).</summary>
    public string PartitionBy { get; init; } = "";

    /// <summary>Optional renames, batch table name to lake table name.</summary>
    public IReadOnlyDictionary<string, string> Tables { get; init; } = new Dictionary<string, string>();

    /// <summary>The column holding each row's source position: rows at or below the sink's checkpoint are skipped on replay. Tables without it rely on batch positions alone.</summary>
    public string PositionColumn { get; init; } = "_offset";

    /// <summary>A partition is compacted once it has this many small files.</summary>
    public int CompactMinFiles { get; init; } = 8;

    /// <summary>Files under this many rows count as small.</summary>
    public long CompactSmallRows { get; init; } = 250_000;

    /// <summary>How often the sink looks for partitions to compact, and sweeps replaced files past their grace.</summary>
    public TimeSpan CompactInterval { get; init; } = TimeSpan.FromSeconds(5);

    private static readonly string[] NotForMirrors = ["partition_by", "position_column"];

    public static LakeSinkOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var tables = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map.Map("tables", doc: "Optional renames, batch table name to lake table name.") is { } renames)
        {
            foreach (var key in renames.Keys.ToList())
            {
                var value = renames.String(key) ?? "";
                if (!Connectors.Http.Ingest.HttpIngestOptions.IdentifierRegex().IsMatch(value)) { renames.Error(key, $"'{value}' must be a table name (letters, digits, '_')"); }
                tables[key] = value;
            }

            renames.Done();
        }

        var mode = map.Enum("mode", LakeSinkMode.Changes, doc: "`changes` or `mirror`.");
        var mirror = mode == LakeSinkMode.Mirror;
        var keys = ParseKeys(map, mirror);
        var compact = map.Map("compaction", doc: "Merging of a partition's small Parquet files into one.");
        var options = new LakeSinkOptions
        {
            Mode = mode,
            Keys = keys,
            Zone = map.RequiredString("zone", doc: "The lake zone (schema) the tables land in (required): a batch table `events` becomes `<zone>.events`."),
            // A mirror is one current-state table per source table: not partitioned, positioned by the change's LSN.
            PartitionBy = mirror ? "" : map.RequiredString("partition_by", doc: "The timestamp column whose UTC date is a row's partition (`date=YYYY-MM-DD`) (required; every table must have it)."),
            Tables = tables,
            PositionColumn = mirror ? Core.Schema.ChangeEnvelope.Lsn : map.String("position_column", Default.PositionColumn, doc: "The column holding each row's source position: rows at or below the sink's checkpoint are skipped on replay. Tables without it rely on batch positions alone.") ?? Default.PositionColumn,
            CompactMinFiles = compact?.Int("min_files", Default.CompactMinFiles, 2, 10_000, doc: "A partition is compacted once it holds this many small files.") ?? Default.CompactMinFiles,
            CompactSmallRows = compact?.Int("small_rows", (int)Default.CompactSmallRows, 1, int.MaxValue, doc: "A file with fewer rows than this is small.") ?? Default.CompactSmallRows,
            CompactInterval = compact?.Duration("interval", Default.CompactInterval, doc: "How often partitions are checked for compaction.") ?? Default.CompactInterval,
        };
        compact?.Done();
        if (options.Zone.Length > 0 && !Connectors.Http.Ingest.HttpIngestOptions.IdentifierRegex().IsMatch(options.Zone))
        {
            map.Error("zone", $"'{options.Zone}' must be letters, digits and '_'");
        }

        if (mirror)
        {
            foreach (var key in NotForMirrors.Where(k => map.String(k) is not null))
            {
                map.Error(key, $"lake sink in zone '{options.Zone}': mode: mirror takes no {key} (a mirror is one table per source table, ordered by _lsn and _seq); remove it");
            }
        }

        return options;
    }

    private static Dictionary<string, IReadOnlyList<string>> ParseKeys(ConfigMap map, bool mirror)
    {
        var keys = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (map.Map("keys", doc: "A mirror's key columns per batch table (`keys: { content: [content_id] }`); a table not named here is keyed by the source table's primary key.") is { } keyMap)
        {
            if (!mirror) { map.Error("keys", "lake sink: keys are a mirror's (mode: mirror); a change log keeps every row"); }
            foreach (var table in keyMap.Keys.ToList())
            {
                var columns = keyMap.StringList(table);
                if (columns.Count == 0) { keyMap.Error(table, "lake sink: name the key columns, for example [content_id]"); }
                keys[table] = columns;
            }

            keyMap.Done();
        }

        return keys;
    }
}
