namespace Sluice.Lake;

/// <summary>A Parquet file written under <c>lake/_staging</c>, not yet visible; it becomes part of its table only at commit.</summary>
public sealed record StagedFile(LakeTable Table, string PartitionValue, string Path, long Rows);
