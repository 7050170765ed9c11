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
    /// current rows: a large mirror with a steady stream wants a higher <c>min_files</c>. Every file is folded: a key
    /// change cut between two writes finds the old key's row below its tombstone (<see cref="MirrorSql.Folded"/>), kept
    /// while the delete is at or above <paramref name="settledBelow"/>, the source's low-water mark the sink last saw.
    /// Returns how many files were replaced.
    /// </summary>
    public int Fold(LakeTable table, int minFiles, long? settledBelow, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { return 0; }
        var files = lake.FileEntries(table.QualifiedName);
        if (files.Count < 2) { return 0; }
        var largest = files.Max(f => f.Rows);
        if (files.Count < minFiles && (files.Sum(f => f.Rows) - largest) * 2 < largest) { return 0; }
        return FoldAll(table, files, settledBelow, ct);
    }

    /// <summary>
    /// Folds exactly <paramref name="files"/> of <paramref name="table"/> (any of its files: what they hold is kept as
    /// the read sees it, beside the others; <paramref name="settledBelow"/> as for <see cref="Fold"/>). Returns how many were replaced (0 when someone replaced one first).
    /// </summary>
    public int FoldAll(LakeTable table, IReadOnlyList<LakeFileEntry> files, long? settledBelow, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(files);
        ct.ThrowIfCancellationRequested();
        using var stager = lake.BeginStaging($"fold-{table.Zone}-{table.Name}");
        var output = stager.NextPath();
        var paths = files.Select(f => f.Path).ToList();
        var written = LakeCompactor.WriteParquet(lake, MirrorSql.Folded(table, LakeQueryEngine.RowsOf(table, paths), settledBelow), output);
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
