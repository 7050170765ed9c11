namespace Sluice.Core.IO;

/// <summary>
/// Files and folders that hold secrets or token hashes (the data folder, <c>meta.db</c>, key files, token lists) are
/// created readable by their owner only: the mode is given at creation, so there is no moment when they are open to
/// others. Existing files keep the mode their owner chose. On Windows the folder's ACLs apply instead.
/// </summary>
public static class PrivateFiles
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates the folder (and missing parents) as 0700 unless it exists.</summary>
    public static void CreateFolder(string path)
    {
        if (OperatingSystem.IsWindows()) { Directory.CreateDirectory(path); }
        else { Directory.CreateDirectory(path, FolderMode); }
    }

    /// <summary>Creates an empty 0600 file unless one exists (SQLite then opens it as a new database, its WAL files take its mode).</summary>
    public static void CreateEmpty(string path)
    {
        try
        {
            using var _ = Open(path, System.IO.FileMode.CreateNew);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Already there (another process was first): its mode stays.
        }
    }

    /// <summary>Writes a new 0600 file (replacing one of that name) and flushes it to disk.</summary>
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        using var stream = Open(path, System.IO.FileMode.Create);
        stream.Write(content);
        stream.Flush(flushToDisk: true);
    }

    private static FileStream Open(string path, System.IO.FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) { options.UnixCreateMode = FileMode; }
        return new FileStream(path, options);
    }
}
