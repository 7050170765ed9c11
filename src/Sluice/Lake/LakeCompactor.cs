using System.Globalization;
using Sluice.Core;

namespace Sluice.Lake;

/// <summary>
/// Merges a partition's small files into one, so frequent small commits (a stream made visible every few hundred
/// milliseconds) do not leave queries opening thousands of files. The merged file replaces exactly the files it was
/// made from, in one manifest transaction: a query lists either the old files or the new one, never both and never
/// neither, and files added meanwhile are untouched. Replaced files stay on disk for <see cref="LakeStore.GarbageGrace"/>
/// so queries that already listed them can finish.
/// </summary>
public sealed class LakeCompactor(LakeStore lake)
{
    /// <summary>DuckDB's memory limit while merging (a merge of up to four times the small-file limit streams through it).</summary>
    public const string CompactionMemory = "256MB";

    /// <summary>Compacts every partition of <paramref name="table"/> holding at least <paramref name="minFiles"/> files under <paramref name="smallRows"/> rows; returns how many files were merged away.</summary>
    public int Compact(LakeTable table, int minFiles, long smallRows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        var merged = 0;
        var groups = lake.FileEntries(table.QualifiedName)
            .Where(f => f.Rows < smallRows)
            .GroupBy(f => f.Partition, StringComparer.Ordinal)
            .Where(g => g.Count() >= minFiles)
            .ToList();
        foreach (var group in groups)
        {
            ct.ThrowIfCancellationRequested();
            // Oldest first and bounded, so one pass never builds a file much larger than the small-file limit.
            var files = new List<LakeFileEntry>();
            long rows = 0;
            foreach (var f in group.OrderBy(f => f.Id))
            {
                if (files.Count >= 2 && rows + f.Rows > smallRows * 4) { break; }
                files.Add(f);
                rows += f.Rows;
            }

            if (files.Count < 2)
            {
                continue;
            }

            using var stager = lake.BeginStaging($"compact-{table.Zone}-{table.Name}");
            var output = stager.NextPath();
            long written;
            using (var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb")))
            {
                // Compaction runs beside ingest: its memory is bounded apart from queries' (DuckDB spills past it).
                LakeQueryEngine.Exec(db, $"SET memory_limit = {LakeQueryEngine.Literal(CompactionMemory)}");
                var list = string.Join(", ", files.Select(f => LakeQueryEngine.Literal(f.Path)));
                LakeQueryEngine.Exec(db, $"COPY (SELECT * FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true)) TO {LakeQueryEngine.Literal(output)} (FORMAT parquet)");
                using var cmd = db.CreateCommand();
                cmd.CommandText = $"SELECT count(*) FROM read_parquet({LakeQueryEngine.Literal(output)})";
                written = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
            }

            if (written != rows)
            {
                throw new SluiceException($"compaction of {table.QualifiedName} partition {group.Key}: merged file has {written} rows, the {files.Count} inputs {rows}; nothing replaced");
            }

            // DuckDB does not fsync what it writes; the manifest may only name durable files.
            using (var stream = new FileStream(output, FileMode.Open, FileAccess.ReadWrite))
            {
                stream.Flush(flushToDisk: true);
            }

            stager.AddWritten(table, group.Key, output, written);
            try
            {
                lake.Commit(stager, replaceFiles: files.Select(f => f.Path).ToList());
                merged += files.Count;
            }
            catch (LakeConflictException)
            {
                // Someone else compacted these files first: theirs stands, ours is an orphan for the sweep.
            }
        }

        return merged;
    }
}
