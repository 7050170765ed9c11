using Sluice.Connectors.Files;
using Sluice.Core.Recipes;

namespace Sluice.Bench;

/// <summary>How far a file source's pass over its drop folder is, for a benchmark phase's progress.</summary>
internal static class DropProgress
{
    /// <summary>Reports the files taken from the drop folder while <paramref name="load"/> runs (every 2 s and at the end).</summary>
    public static async Task WatchAsync(FilesSource source, IProgress<JobProgress>? progress, Task load)
    {
        // Done is what reached processed/ or failed/ (a file leaves incoming/ when it starts, not when it is landed).
        int Finished() => Directory.EnumerateFiles(source.Drop.Processed, "*", SearchOption.AllDirectories).Count()
            + Directory.EnumerateFiles(source.Drop.Failed, "*", SearchOption.AllDirectories).Count();
        var total = source.Drop.ListIncoming().Count;
        var before = Finished();
        while (progress is not null && !load.IsCompleted)
        {
            progress.Report(new JobProgress(Math.Min(total, Finished() - before), total, "files"));
            await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        }

        await load.ConfigureAwait(false);
        progress?.Report(new JobProgress(total, total, "files"));
    }
}
