namespace Sluice.Lake;

/// <summary>
/// Folds a mirror table's files into one file (<see cref="MirrorSql.Folded"/>: the last truncate and each key's last
/// change after it, deletes kept as tombstones), so queries read one state instead of every change, and truncated rows
/// and superseded versions leave the lake, while a change stored late (older than its key's delete or the truncate) is
/// still known to be older (docs/SCALING.md, "Across batches, per key"). The new file replaces exactly the files it was
/// computed from, in one manifest transaction: changes committed meanwhile stay as they are, and the replaced files
/// become garbage only through that transaction, deleted after <see cref="LakeStore.GarbageGrace"/> like any compacted file.
/// </summary>
public sealed class MirrorCompactor(LakeStore lake)
{
    /// <summary>
    /// Folds once the table has <paramref name="minFiles"/> files, or once the rows beside the largest file (the last
    /// fold, as a rule) reach half of its rows, so reads open few files and scan little history. A fold rewrites the
    /// current rows: a large mirror with a steady stream wants a higher <c>min_files</c>. The file holding the table's
    /// newest change stays out of the fold: when a write ended with a key change's delete, the insert, in the next write,
    /// takes the values it did not carry from the old key's row before the delete, which a fold would have dropped (a
    /// cluster's consumer cuts its batches by count, not at commits). Returns how many files were replaced.
    /// </summary>
    public int Fold(LakeTable table, int minFiles, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { return 0; }
        var files = lake.FileEntries(table.QualifiedName);
        if (files.Count < 3) { return 0; }
        var largest = files.Max(f => f.Rows);
        if (files.Count < minFiles && (files.Sum(f => f.Rows) - largest) * 2 < largest) { return 0; }
        var newest = NewestChangeFile(files);
        var folded = files.Where(f => f.Path != newest).ToList();
        // Nothing is folded when the newest change's file is not found among them (it would not be left out).
        return folded.Count == files.Count - 1 && folded.Count >= 2 ? FoldAll(table, folded, ct) : 0;
    }

    /// <summary>The path of the file holding the highest (<c>_lsn</c>, <c>_seq</c>) of <paramref name="files"/>.</summary>
    private string? NewestChangeFile(IReadOnlyList<LakeFileEntry> files)
    {
        using var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT filename FROM read_parquet([{string.Join(", ", files.Select(f => LakeQueryEngine.Literal(f.Path)))}], hive_partitioning = false, union_by_name = true, filename = true) " +
                          $"ORDER BY {Core.Schema.ChangeEnvelope.Lsn} DESC, {Core.Schema.ChangeEnvelope.Seq} DESC LIMIT 1";
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>
    /// Folds exactly <paramref name="files"/> of <paramref name="table"/> (any of its files: what they hold is kept as
    /// the read sees it, beside the others). Returns how many were replaced (0 when someone replaced one first).
    /// </summary>
    public int FoldAll(LakeTable table, IReadOnlyList<LakeFileEntry> files, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(files);
        ct.ThrowIfCancellationRequested();
        using var stager = lake.BeginStaging($"fold-{table.Zone}-{table.Name}");
        var output = stager.NextPath();
        var paths = files.Select(f => f.Path).ToList();
        var written = LakeCompactor.WriteParquet(lake, MirrorSql.Folded(table, LakeQueryEngine.RowsOf(table, paths)), output);
        if (written > 0)
        {
            stager.AddWritten(table, "", output, written);
        }

        try
        {
            // Files without a row (none written by DuckDB) are replaced by nothing.
            lake.Commit(stager, replaceFiles: paths);
            return files.Count;
        }
        catch (LakeConflictException)
        {
            return 0;
        }
    }
}
