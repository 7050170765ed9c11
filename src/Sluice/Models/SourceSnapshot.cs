using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sluice.Core;
using Sluice.Lake;

namespace Sluice.Models;

/// <summary>
/// The files of the source tables (lake tables the models read) at one moment, so that a whole processing works on the
/// same inputs even while files keep landing; and, per day (date partition), a fingerprint of those files, which tells
/// which days received new or replaced files since they were last processed.
/// </summary>
public sealed class SourceSnapshot
{
    private SourceSnapshot(IReadOnlyList<(LakeTable Table, IReadOnlyList<LakeFileEntry> Files)> tables) => Tables = tables;

    public IReadOnlyList<(LakeTable Table, IReadOnlyList<LakeFileEntry> Files)> Tables { get; }

    public static SourceSnapshot Capture(LakeStore lake, IReadOnlyList<string> sources)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(sources);
        // Models that read no lake table need no lake: on a cluster's shared store there is none (docs/SCALING.md).
        if (sources.Count == 0) { return new SourceSnapshot([]); }
        var watermark = lake.MaxManifestId();
        var tables = new List<(LakeTable, IReadOnlyList<LakeFileEntry>)>();
        foreach (var name in sources)
        {
            var table = lake.Table(name)
                ?? throw new SluiceException($"source '{name}' is not a table of the lake yet (tables: {string.Join(", ", lake.Tables().Select(t => t.QualifiedName))}); start the pipeline that lands it first");
            tables.Add((table, lake.FileEntries(name, watermark)));
        }

        return new SourceSnapshot(tables);
    }

    public IReadOnlyList<string> Files(string table) =>
        Tables.First(t => t.Table.QualifiedName == table).Files.Select(f => f.Path).ToList();

    /// <summary>Per day that has source files, a fingerprint of exactly those files (their manifest ids).</summary>
    public IReadOnlyDictionary<DateOnly, string> DayFingerprints()
    {
        var ids = new SortedDictionary<DateOnly, List<string>>();
        foreach (var (table, files) in Tables)
        {
            foreach (var f in files)
            {
                if (!DateOnly.TryParseExact(f.Partition, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)) { continue; }
                if (!ids.TryGetValue(day, out var list)) { ids[day] = list = []; }
                list.Add($"{table.QualifiedName}:{f.Id}");
            }
        }

        return ids.ToDictionary(kv => kv.Key, kv => Hash(kv.Value));
    }

    /// <summary>Per partition of each table, a fingerprint of its files (for engines that copy sources, partition by partition).</summary>
    public IReadOnlyDictionary<string, string> PartitionFingerprints(string table) =>
        Tables.First(t => t.Table.QualifiedName == table).Files
            .GroupBy(f => f.Partition, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => Hash(g.Select(f => f.Id.ToString(CultureInfo.InvariantCulture))), StringComparer.Ordinal);

    public const string NoFiles = "none";

    private static string Hash(IEnumerable<string> parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(",", parts.Order(StringComparer.Ordinal)))))[..32];
}
