using System.Globalization;
using Sluice.Lake;

namespace Sluice.Models.Embedded;

/// <summary>
/// What one processing (rewinds and replayed days) has written to the lake but not yet published: its files, kept in a
/// staging folder of its own (in Hive layout, so the session reads them as the table's partitions), the partitions of
/// the published tables they replace, and the model state, views and day records to commit with them. Published by
/// one <see cref="LakeStore.Commit"/> at the end, so a processing that fails anywhere leaves every table as it was.
/// </summary>
internal sealed class PendingLakeCommit(LakeStager stager) : IDisposable
{
    private readonly Dictionary<string, PendingTable> _tables = new(StringComparer.Ordinal);
    private int _sequence;

    public Dictionary<string, DateOnly?> Applied { get; } = new(StringComparer.Ordinal);

    /// <summary>Views to save (SQL) or drop (null) by name.</summary>
    public Dictionary<string, string?> Views { get; } = new(StringComparer.Ordinal);

    public SortedDictionary<DateOnly, DayRecord> Days { get; } = [];

    /// <summary>Takes a run's staged files; they replace what <paramref name="replace"/> held, published or pending.</summary>
    public void Add(LakeStager run, IReadOnlyCollection<(LakeTable Table, string Partition)> replace)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(replace);
        // The lake sweeps staging folders untouched for its grace period; a long processing keeps its own fresh.
        Directory.SetLastWriteTimeUtc(stager.Folder, DateTime.UtcNow);
        foreach (var (table, partition) in replace)
        {
            var t = Table(table);
            t.Replaced.Add(partition);
            if (t.Files.Remove(partition, out var superseded))
            {
                foreach (var f in superseded) { File.Delete(f.Path); }
            }
        }

        foreach (var f in run.Files)
        {
            var t = Table(f.Table);
            var folder = f.Table.IsPartitioned ? Path.Combine(stager.Folder, $"{f.Table.PartitionKey}={f.PartitionValue}") : stager.Folder;
            Directory.CreateDirectory(folder);
            var path = Path.Combine(folder, (++_sequence).ToString("D6", CultureInfo.InvariantCulture) + ".parquet");
            File.Move(f.Path, path);
            if (!t.Files.TryGetValue(f.PartitionValue, out var list)) { t.Files[f.PartitionValue] = list = []; }
            list.Add(f with { Path = path });
        }
    }

    /// <summary>The table's files as this processing sees them: published ones not replaced, and pending ones.</summary>
    public IReadOnlyList<LakeFileEntry> Current(LakeStore lake, string table)
    {
        var published = lake.FileEntries(table);
        if (!_tables.TryGetValue(table, out var t)) { return published; }
        return published.Where(f => !t.Replaced.Contains(f.Partition))
            .Concat(t.Files.SelectMany(kv => kv.Value.Select(f => new LakeFileEntry(0, f.Path, kv.Key, f.Rows)))).ToList();
    }

    /// <summary>Publishes everything in one lake commit, <paramref name="alsoInTransaction"/> writing the state with it.</summary>
    public void Publish(LakeStore lake, Action<System.Data.Common.DbConnection, System.Data.Common.DbTransaction> alsoInTransaction)
    {
        foreach (var f in _tables.Values.SelectMany(t => t.Files.Values.SelectMany(l => l)))
        {
            stager.AddWritten(f.Table, f.PartitionValue, f.Path, f.Rows);
        }

        var replace = _tables.Values.SelectMany(t => t.Replaced.Select(p => (t.Table, p))).ToList();
        lake.Commit(stager, alsoInTransaction, replace);
    }

    public void Dispose() => stager.Dispose();

    private PendingTable Table(LakeTable table)
    {
        if (!_tables.TryGetValue(table.QualifiedName, out var t)) { _tables[table.QualifiedName] = t = new PendingTable(table); }
        return t;
    }

    private sealed class PendingTable(LakeTable table)
    {
        public LakeTable Table { get; } = table;

        public HashSet<string> Replaced { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, List<StagedFile>> Files { get; } = new(StringComparer.Ordinal);
    }
}
