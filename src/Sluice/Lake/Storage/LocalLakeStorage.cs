using Sluice.Core.IO;

namespace Sluice.Lake.Storage;

/// <summary>The lake in a folder of the file system: a data folder's <c>lake/</c>, or a cluster's shared folder.</summary>
public sealed class LocalLakeStorage : ILakeStorage
{
    public LocalLakeStorage(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
        StagingRoot = Path.Combine(Root, "_staging");
    }

    public string Root { get; }

    public string StagingRoot { get; }

    public void Publish(IReadOnlyList<(string Staged, string Final)> moves)
    {
        ArgumentNullException.ThrowIfNull(moves);
        foreach (var (staged, final) in moves)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
            File.Move(staged, final);
        }

        // The renames must be durable before the manifest names the files; one directory fsync per partition folder.
        foreach (var folder in moves.Select(m => Path.GetDirectoryName(m.Final)!).Distinct(StringComparer.Ordinal))
        {
            FileSync.Directory(folder);
        }
    }

    public void Delete(string path)
    {
        try
        {
            if (Directory.Exists(path)) { Directory.Delete(path, true); }
            else if (File.Exists(path)) { File.Delete(path); }
        }
        catch (IOException)
        {
            // Another sweep got there first, or a reader still has it open on a system that cares; the next sweep retries.
        }
    }
}
