namespace Sluice.Lake;

/// <summary>One committed file of a lake table, as the manifest names it.</summary>
public sealed record LakeFileEntry(long Id, string Path, string Partition, long Rows);
