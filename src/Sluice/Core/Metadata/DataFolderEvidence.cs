namespace Sluice.Core.Metadata;

/// <summary>
/// Whether a data folder has been used: the data a metadata store must know about before anything may write there.
/// Files waiting in a drop folder's <c>incoming/</c> are not evidence (they may be dropped before the first run).
/// </summary>
public static class DataFolderEvidence
{
    private static readonly string[] DropHistory = ["processing", "processed", "failed"];

    /// <summary>What the folder holds (for a message), or null for a folder that is fresh.</summary>
    public static string? Find(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!Directory.Exists(data.Root))
        {
            return null;
        }

        var parquet = LakeFileCount(data);
        if (parquet > 0)
        {
            return $"{data.LakeRoot} holds {parquet:N0} Parquet file(s)";
        }

        var landing = Path.Combine(data.Root, "landing");
        if (Directory.Exists(landing) && Directory.EnumerateFiles(landing, "*", SearchOption.AllDirectories).Any())
        {
            return $"{landing} holds landing logs";
        }

        foreach (var folder in Directory.EnumerateDirectories(data.Root))
        {
            foreach (var history in DropHistory)
            {
                var path = Path.Combine(folder, history);
                if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
                {
                    return $"{path} holds files already taken in";
                }
            }
        }

        return null;
    }

    /// <summary>Parquet files under the lake, outside its staging folder.</summary>
    public static int LakeFileCount(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!Directory.Exists(data.LakeRoot))
        {
            return 0;
        }

        return Directory.EnumerateDirectories(data.LakeRoot)
            .Where(zone => !string.Equals(zone, data.StagingRoot, StringComparison.Ordinal))
            .Sum(zone => Directory.EnumerateFiles(zone, "*.parquet", SearchOption.AllDirectories).Count());
    }
}
