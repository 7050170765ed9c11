using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// A table of the lake: Parquet files under <c>lake/&lt;zone&gt;/&lt;name&gt;/&lt;partition&gt;=&lt;value&gt;/</c>, queryable as <c>zone.name</c>.
/// The partition column lives in the folder name only (Hive style), never inside the files.
/// </summary>
public sealed record LakeTable(string Zone, string Name, string PartitionKey, FieldType PartitionType, IReadOnlyList<FieldSpec> Columns)
{
    public string QualifiedName => $"{Zone}.{Name}";

    public TableSchema Schema => new(QualifiedName, Columns);
}
