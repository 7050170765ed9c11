namespace Sluice.Lake.Storage;

/// <summary>
/// Where the lake's Parquet files live: a local folder for one process, a folder every worker of a cluster sees
/// (<c>SLUICE_CLUSTER_FOLDER</c>). Kept this small so that an object store can stand behind it later: the lake only
/// publishes staged files under their final names, deletes what it proved is its own garbage, and lists what is there.
/// Paths are absolute local paths because DuckDB reads the files by them.
/// </summary>
public interface ILakeStorage
{
    /// <summary>The folder of the lake's tables (<c>zone/table/key=value/file.parquet</c>).</summary>
    string Root { get; }

    /// <summary>Where units of work stage their files: on the same storage as <see cref="Root"/>, so a publish is a rename.</summary>
    string StagingRoot { get; }

    /// <summary>Moves staged files to their final names, durably: once this returns a manifest may name them.</summary>
    void Publish(IReadOnlyList<(string Staged, string Final)> moves);

    /// <summary>Deletes a file or a staging folder; one already gone is no error (another sweep got there first).</summary>
    void Delete(string path);
}
