using Sluice.Core.Config;

namespace Sluice.Connectors.Files;

/// <summary>Options of the <c>files</c> source (a drop folder), read from the recipe's <c>source:</c> block and validated at load.</summary>
public sealed class FilesOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly FilesOptions Default = new();

    /// <summary>The drop folder, relative to the data folder (default: the recipe's name). Holds incoming/, processing/, processed/, failed/.</summary>
    public string Folder { get; init; } = "";

    /// <summary>The recipe's folder of file-type YAML files, relative to the recipe.</summary>
    public string FileTypes { get; init; } = "filetypes";

    /// <summary>How often incoming/ is listed.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A file is claimed once its size and modification time are unchanged across two looks this far apart.</summary>
    public TimeSpan StableAfter { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Files ingested at the same time.</summary>
    public int MaxParallelFiles { get; init; } = 2;

    /// <summary>Records per batch between the reader and the Parquet writer; two batches per file are in flight at most.</summary>
    public int BatchRows { get; init; } = 65_536;

    /// <summary>
    /// Small files are committed together, up to this many input bytes per commit (default 32 MiB; 0 commits every file
    /// on its own). Files larger than a quarter of it always stream through alone.
    /// </summary>
    public long GroupMaxBytes { get; init; } = 32L << 20;

    /// <summary>
    /// On shutdown, how long files already claimed may take to finish before they are abandoned to the next start. 10 s:
    /// the whole stop (this, the host's margin and closing) then fits in the 30 s a supervisor commonly waits before SIGKILL.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>With <c>--once</c>, how long to wait for files that are still being written before leaving them for the next run.</summary>
    public TimeSpan OnceWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// With sinks, the largest file taken: each file is one unit, held in memory until every sink has
    /// committed it (a sink's queue holds up to 4). A larger file fails with that reason.
    /// </summary>
    public long UnitMaxBytes { get; init; } = 256L << 20;

    public static FilesOptions Parse(ConfigMap map, string recipeName)
    {
        var options = new FilesOptions
        {
            Folder = map.String("folder", recipeName, doc: "The drop folder, relative to the data folder. Holds incoming/, processing/, processed/, failed/.") ?? recipeName,
            FileTypes = map.String("file_types", Default.FileTypes, doc: "The recipe's folder of file-type YAML files, relative to the recipe.") ?? Default.FileTypes,
            PollInterval = map.Duration("poll_interval", Default.PollInterval, doc: "How often incoming/ is listed."),
            StableAfter = map.Duration("stable_after", Default.StableAfter, doc: "A file is claimed once its size and modification time are unchanged across two looks this far apart (at most 1s)."),
            MaxParallelFiles = map.Int("max_parallel_files", Default.MaxParallelFiles, 1, 64, doc: "Files ingested at the same time."),
            BatchRows = map.Int("batch_rows", Default.BatchRows, 1, 4_000_000, doc: "Records per batch between the reader and the Parquet writer; two batches per file are in flight at most."),
            GroupMaxBytes = map.Int("group_max_mb", 32, 0, 1024, doc: "Small files are committed together, up to this much input per commit (0: every file on its own). Files larger than a quarter of it always stream through alone.") * (1L << 20),
            DrainTimeout = map.Duration("drain_timeout", Default.DrainTimeout, doc: "On shutdown, how long files already claimed may take to finish before they are abandoned to the next start."),
            OnceWait = map.Duration("once_wait", Default.OnceWait, doc: "With `--once`, how long to wait for files that are still being written before leaving them for the next run."),
            UnitMaxBytes = map.Int("unit_max_mb", 256, 1, 4096, doc: "With sinks, the largest file taken: each file is one unit, held in memory until every sink has committed it (a sink's queue holds up to 4). A larger file fails with that reason.") * (1L << 20),
        };

        if (options.StableAfter > TimeSpan.FromSeconds(1))
        {
            map.Error("stable_after", $"must be at most 1s (a complete file must not wait longer to be claimed), got {options.StableAfter.TotalMilliseconds:0}ms");
        }

        if (options.PollInterval <= TimeSpan.Zero)
        {
            map.Error("poll_interval", "must be more than 0");
        }

        if (Path.IsPathRooted(options.Folder) || options.Folder.Contains("..", StringComparison.Ordinal))
        {
            map.Error("folder", $"must be a folder name inside the data folder, got '{options.Folder}'");
        }

        return options;
    }
}
