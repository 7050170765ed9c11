namespace Sluice.Lake;

/// <summary>
/// Folds a mirror table's files into one file of its current rows (<see cref="MirrorSql"/> with the envelope kept), so
/// queries read one state instead of every change, and deletes, truncated rows and superseded versions leave the lake.
/// The new file replaces exactly the files it was computed from, in one manifest transaction: changes committed
/// meanwhile stay as they are (they are newer than everything folded), and the replaced files become garbage only
/// through that transaction, deleted after <see cref="LakeStore.GarbageGrace"/> like any compacted file.
/// </summary>
public sealed class MirrorCompactor(LakeStore lake)
{
    /// <summary>
    /// Folds once the table has <paramref name="minFiles"/> files, or once the rows beside the largest file (the last
    /// fold, as a rule) reach half of its rows, so reads open few files and scan little history. A fold rewrites the
    /// current rows: a large mirror with a steady stream wants a higher <c>min_files</c>. Returns how many files were replaced.
    /// </summary>
    public int Fold(LakeTable table, int minFiles, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { return 0; }
        var files = lake.FileEntries(table.QualifiedName);
        if (files.Count < 2) { return 0; }
        var largest = files.Max(f => f.Rows);
        if (files.Count < minFiles && (files.Sum(f => f.Rows) - largest) * 2 < largest) { return 0; }
        return FoldAll(table, files, ct);
    }

    /// <summary>
    /// Folds exactly <paramref name="files"/>: all current files of <paramref name="table"/>, or its oldest ones (a
    /// truncate folded away must be older than every change left beside the fold). Returns how many were replaced
    /// (0 when someone replaced one first).
    /// </summary>
    public int FoldAll(LakeTable table, IReadOnlyList<LakeFileEntry> files, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(files);
        ct.ThrowIfCancellationRequested();
        using var stager = lake.BeginStaging($"fold-{table.Zone}-{table.Name}");
        var output = stager.NextPath();
        var paths = files.Select(f => f.Path).ToList();
        var written = LakeCompactor.WriteParquet(lake, MirrorSql.Current(table, LakeQueryEngine.RowsOf(table, paths), envelope: true), output);
        if (written > 0)
        {
            stager.AddWritten(table, "", output, written);
        }

        try
        {
            // With no current row left (all deleted or truncated), the files are replaced by nothing.
            lake.Commit(stager, replaceFiles: paths);
            return files.Count;
        }
        catch (LakeConflictException)
        {
            return 0;
        }
    }
}
