using System.Globalization;
using Sluice.Core;
using Sluice.Lake.Parquet;

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

    /// <summary>
    /// Files Sluice wrote whose row groups hold at least this many rows on average are merged by copying their row
    /// groups (<see cref="ParquetFileMerger"/>); smaller ones are re-encoded by DuckDB into large row groups.
    /// </summary>
    public const long CopyRowGroupRows = 16_384;

    /// <summary>Compacts every partition of <paramref name="table"/> holding at least <paramref name="minFiles"/> files under <paramref name="smallRows"/> rows; returns how many files were merged away.</summary>
    public int Compact(LakeTable table, int minFiles, long smallRows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        // One compactor at a time across a cluster's workers (another's pass is under way: this one skips its turn).
        using var maintenance = LakeMaintenance.TryEnter(lake.Metadata);
        if (maintenance is null)
        {
            return 0;
        }

        var merged = 0;
        var groups = lake.FileEntries(table.QualifiedName)
            .Where(f => f.Rows < smallRows)
            .GroupBy(f => f.Partition, StringComparer.Ordinal)
            .Where(g => g.Count() >= minFiles)
            .ToList();
        foreach (var group in groups)
        {
            ct.ThrowIfCancellationRequested();
            // Files whose row groups are already large are merged by copying them; the others are re-encoded. Each
            // kind is merged apart, so one small file does not make a pass re-encode a million copyable rows.
            var copyable = new List<(LakeFileEntry File, SluiceFileLayout Layout)>();
            var others = new List<LakeFileEntry>();
            foreach (var f in group.OrderBy(f => f.Id))
            {
                if (ParquetFileMerger.TryRead(f.Path, table.Columns) is { } layout && layout.Rows == f.Rows && layout.Rows / layout.Groups.Count >= CopyRowGroupRows)
                {
                    copyable.Add((f, layout));
                }
                else
                {
                    others.Add(f);
                }
            }

            var copy = Oldest(copyable, c => c.File.Rows, smallRows);
            merged += MergeOnce(table, group.Key, copy.Select(c => c.File).ToList(), output => ParquetFileMerger.Merge(copy.Select(c => (c.File.Path, c.Layout)).ToList(), table.Columns, output));
            var rewrite = Oldest(others, f => f.Rows, smallRows);
            merged += MergeOnce(table, group.Key, rewrite, output => Rewrite(rewrite, output));
        }

        return merged;
    }

    /// <summary>Oldest first and bounded, so one pass never builds a file much larger than the small-file limit.</summary>
    private static List<T> Oldest<T>(List<T> candidates, Func<T, long> rowsOf, long smallRows)
    {
        var files = new List<T>();
        long rows = 0;
        foreach (var f in candidates)
        {
            if (files.Count >= 2 && rows + rowsOf(f) > smallRows * 4) { break; }
            files.Add(f);
            rows += rowsOf(f);
        }

        return files;
    }

    /// <summary>Merges <paramref name="files"/> (two at least) into one file with <paramref name="write"/> and swaps it in; returns how many files it replaced.</summary>
    private int MergeOnce(LakeTable table, string partition, List<LakeFileEntry> files, Func<string, long> write)
    {
        if (files.Count < 2)
        {
            return 0;
        }

        var rows = files.Sum(f => f.Rows);
        using var stager = lake.BeginStaging($"compact-{table.Zone}-{table.Name}");
        var output = stager.NextPath();
        var written = write(output);
        if (written != rows)
        {
            throw new SluiceException($"compaction of {table.QualifiedName} partition {partition}: merged file has {written} rows, the {files.Count} inputs {rows}; nothing replaced");
        }

        stager.AddWritten(table, partition, output, written);
        try
        {
            lake.Commit(stager, replaceFiles: files.Select(f => f.Path).ToList());
            return files.Count;
        }
        catch (LakeConflictException)
        {
            // Someone else compacted these files first: theirs stands, ours is an orphan for the sweep.
            return 0;
        }
    }

    /// <summary>Merges files with DuckDB, which re-encodes the rows into large row groups with dictionaries; returns the rows written.</summary>
    private long Rewrite(List<LakeFileEntry> files, string output)
    {
        var list = string.Join(", ", files.Select(f => LakeQueryEngine.Literal(f.Path)));
        return WriteParquet(lake, $"SELECT * FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true)", output);
    }

    /// <summary>Writes what <paramref name="select"/> returns to a durable Parquet file with DuckDB, within the compaction's memory; returns the rows written.</summary>
    internal static long WriteParquet(LakeStore lake, string select, string output)
    {
        long written;
        using (var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb")))
        {
            // Compaction runs beside ingest: its memory is bounded apart from queries' (DuckDB spills past it), and one
            // thread holds one set of buffers (two raised the process's peak RSS from 486 to 937 MiB in a minute of
            // overload; ingest has the cores anyway).
            LakeQueryEngine.Exec(db, $"SET memory_limit = {LakeQueryEngine.Literal(CompactionMemory)}; SET threads = 1");
            LakeQueryEngine.Exec(db, $"COPY ({select}) TO {LakeQueryEngine.Literal(output)} (FORMAT parquet)");
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM read_parquet({LakeQueryEngine.Literal(output)})";
            written = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        // DuckDB does not fsync what it writes; the manifest may only name durable files.
        using (var stream = new FileStream(output, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Flush(flushToDisk: true);
        }

        return written;
    }
}
