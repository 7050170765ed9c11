using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// A table of the lake: Parquet files under <c>lake/&lt;zone&gt;/&lt;name&gt;/&lt;partition&gt;=&lt;value&gt;/</c>, queryable as <c>zone.name</c>.
/// The partition column lives in the folder name only (Hive style), never inside the files. A table with an empty
/// <see cref="PartitionKey"/> is unpartitioned: its files sit in <c>lake/&lt;zone&gt;/&lt;name&gt;/</c> and are replaced as a whole
/// (partition value <c>""</c>), which is how model outputs that are rebuilt entirely (dimensions) are kept.
/// </summary>
public sealed record LakeTable(string Zone, string Name, string PartitionKey, FieldType PartitionType, IReadOnlyList<FieldSpec> Columns)
{
    public string QualifiedName => $"{Zone}.{Name}";

    /// <summary>
    /// The key of a mirror table (docs/CDC.md, "Mirrors"): its files hold changes, and a query sees the current row of
    /// each key (<see cref="MirrorSql"/>). Null for an ordinary table, whose files are its rows.
    /// </summary>
    public IReadOnlyList<string>? MirrorKey { get; init; }

    public bool IsMirror => MirrorKey is { Count: > 0 };

    public TableSchema Schema => new(QualifiedName, Columns);

    public bool IsPartitioned => PartitionKey.Length > 0;

    /// <summary>An unpartitioned table: its files are replaced as a whole (through the single partition value <c>""</c>).</summary>
    public static LakeTable Unpartitioned(string zone, string name, IReadOnlyList<FieldSpec> columns) => new(zone, name, "", FieldType.String, columns);
}
