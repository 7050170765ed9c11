using System.CommandLine;
using Microsoft.Extensions.Logging;
using Sluice.Cluster;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Status;
using Sluice.Core.Text;
using Sluice.Hosting;

namespace Sluice.Cli.Commands;

internal static class CdcCommands
{
    /// <summary>How often the command looks at the snapshot's progress.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    public static Command Create()
    {
        var command = new Command("cdc", "Change data capture: snapshots on demand");
        command.Subcommands.Add(Snapshot());
        return command;
    }

    private static Command Snapshot()
    {
        var target = new Argument<string>("pipeline") { Description = "<recipe>/<pipeline> of a postgres_cdc source (for example engagement-cdc/cdc)" };
        var table = new Option<string>("--table") { Description = "The table to read again ([schema.]name, one of the pipeline's tables)", Required = true };
        var where = new Option<string?>("--where") { Description = "Only rows matching this SQL condition (for example \"updated_at > '2026-01-01'\")" };
        var chunkRows = new Option<int?>("--chunk-rows") { Description = "Rows per chunk (default: the source's snapshot_chunk_rows, 1024)" };
        var command = new Command("snapshot",
            "Read a table again while `sluice run` of its recipe streams: in chunks by key, placed in the stream between watermarks so no chunk overwrites a newer change; resumes from its last chunk after a crash")
            { target, table, where, chunkRows };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var qualified = result.GetValue(target)!;
            var slash = qualified.LastIndexOf('/');
            if (slash <= 0 || slash == qualified.Length - 1) { throw new SluiceException($"'{qualified}' is not <recipe>/<pipeline> (for example engagement-cdc/cdc)."); }
            var cluster = CliContext.IsCluster(result);
            var recipe = CliContext.LoadRecipe(qualified[..slash], cluster);
            var name = qualified[(slash + 1)..];
            var pipeline = recipe.Pipelines.FirstOrDefault(p => p.Name == name)
                ?? throw new SluiceException($"recipe '{recipe.Name}' has no pipeline '{name}' (pipelines: {string.Join(", ", recipe.Pipelines.Select(p => p.Name))}).");
            if (pipeline.Source is not PostgresCdcSourceFactory cdc)
            {
                throw new SluiceException($"pipeline '{recipe.Name}/{name}' reads from {pipeline.SourceType}, not postgres_cdc: only change-data-capture pipelines take snapshots.");
            }

            if (result.GetValue(chunkRows) is { } n && n is < 1 or > 1_000_000) { throw new SluiceException($"--chunk-rows must be 1 to 1000000, got {n}."); }
            // In a cluster the shared store is named as run --cluster names it: the SLUICE_CLUSTER_* variables over the recipe's cluster: section.
            using var services = cluster
                ? CliContext.Services(result, CliContext.Folder(result), LogLevel.Warning, CliContext.RequireShared(ClusterSettings.Variables(recipe, Environment.GetEnvironmentVariable)))
                : CliContext.ExistingServices(result);
            var runner = cluster ? Runner.OfCluster(services, recipe.Name, cdc.Options.Slot) : Runner.OfFolder(services, recipe.Name);
            if (!runner.IsRunning()) { throw new SluiceException(runner.NotRunning); }

            var request = await PgSnapshotRequests.SubmitAsync(cdc.Options, recipe.Name, name, result.GetValue(table)!, result.GetValue(where), result.GetValue(chunkRows), services, ct).ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"snapshot {request.Id} of {request.Display}{(request.Where is null ? "" : $" where {request.Where}")}: {request.Total} rows, {request.ChunkRows} per chunk; handed to {runner.Taker()}").ConfigureAwait(false);
            // The total is the rows counted at submission (rows inserted since make the bar end a little late, never early).
            var final = CliProgress.Terminal
                ? await CliProgress.Bar().StartAsync(async p =>
                {
                    var task = p.AddTask($"snapshot {request.Display} (rows)", maxValue: Math.Max(1, request.Total ?? 1));
                    return await FollowAsync(services, request.Id, runner, s => task.Value = Math.Min(task.MaxValue, s.RowsRead), ct).ConfigureAwait(false);
                }).ConfigureAwait(false)
                : await FollowAsync(services, request.Id, runner, Lines(request, services.Time, CliProgress.Lines), ct).ConfigureAwait(false);
            return await ReportAsync(final, runner).ConfigureAwait(false);
        }));
        return command;
    }

    /// <summary>Progress as lines (output not a terminal): at most one a second, and the last one; with the time left at the rate so far.</summary>
    internal static Action<SnapshotRequest> Lines(SnapshotRequest request, TimeProvider time, TextWriter output)
    {
        var estimate = new ProgressEstimate(time);
        var last = DateTimeOffset.MinValue;
        long shown = -1;
        return s =>
        {
            var now = time.GetUtcNow();
            if (s.RowsRead == shown || (now - last < TimeSpan.FromSeconds(1) && s.Status is SnapshotStatus.Queued or SnapshotStatus.Running)) { return; }
            (last, shown) = (now, s.RowsRead);
            output.WriteLine($"{estimate.Line($"snapshot {request.Id} of {request.Display}", s.RowsRead, Math.Max(s.RowsRead, s.Total ?? 0), "rows")}, {s.Chunks} chunks");
        };
    }

    /// <summary>Follows the request until it ends, or the run that was to take it stops (it goes on at the run's next start).</summary>
    private static async Task<SnapshotRequest?> FollowAsync(EngineServices services, long id, Runner runner, Action<SnapshotRequest> show, CancellationToken ct)
    {
        var looked = DateTimeOffset.MinValue;
        while (true)
        {
            var state = PgSnapshotRequests.Get(services, id)!;
            show(state);
            if (state.Status is SnapshotStatus.Done or SnapshotStatus.Failed) { return state; }
            if (services.Time.GetUtcNow() - looked >= runner.LookEvery)
            {
                if (!runner.IsRunning()) { return null; }
                looked = services.Time.GetUtcNow();
            }

            await Task.Delay(Poll, services.Time, ct).ConfigureAwait(false);
        }
    }

    private static async Task<int> ReportAsync(SnapshotRequest? final, Runner runner)
    {
        if (final is null)
        {
            await Console.Error.WriteLineAsync($"error: {runner.Stopped}").ConfigureAwait(false);
            return 1;
        }

        if (final.Status == SnapshotStatus.Failed)
        {
            await Console.Error.WriteLineAsync($"error: snapshot {final.Id} of {final.Display} failed: {final.Error}").ConfigureAwait(false);
            return 1;
        }

        await Console.Out.WriteLineAsync(
            $"snapshot {final.Id} of {final.Display} done: {final.RowsRead} rows read in {final.Chunks} chunks, {final.RowsEmitted} sent downstream, {final.Superseded} left to newer streamed changes").ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// What takes the snapshot and whether it still runs: the recipe's <c>sluice run</c> on this data folder (its run
    /// lock), or in a cluster the recipe's workers in the shared registry, of which the slot's holder takes it (now, or
    /// the worker that takes the slot over, from the last chunk committed).
    /// </summary>
    private sealed record Runner(Func<bool> IsRunning, Func<string> Taker, string NotRunning, string Stopped, TimeSpan LookEvery)
    {
        /// <summary>
        /// A worker counts as gone after this long without a heartbeat: three times the registry's "lost", since on a
        /// loaded machine a live worker's beats come late, and the command must not give up on a snapshot a live worker takes.
        /// </summary>
        private static readonly TimeSpan Gone = 3 * WorkerRegistry.LostAfter;

        public static Runner OfFolder(EngineServices services, string recipe)
        {
            var lockPath = Path.Combine(services.Data.LocksRoot, $"run-{recipe}.lock");
            return new Runner(() => IsLocked(lockPath), () => $"the running '{recipe}'",
                $"'{recipe}' is not running on {services.Data.Root}: the running pipeline takes the snapshot beside its stream. Start it (sluice run {recipe}) and ask again.",
                $"'{recipe}' stopped before the snapshot was done; it goes on from its last committed chunk when `sluice run {recipe}` starts again.",
                TimeSpan.Zero);
        }

        public static Runner OfCluster(EngineServices services, string recipe, string slot)
        {
            List<WorkerView> Live() => [.. WorkerRegistry.List(services.Metadata, services.Time, Gone).Where(w => w.Recipe == recipe && w.Health is "green" or "red")];
            string Taker()
            {
                var live = Live();
                var holder = live.FirstOrDefault(w => w.Holds.TryGetValue("slot", out var slots) && slots.Contains(slot));
                return $"the {live.Count} running worker(s) of '{recipe}' ({(holder is null ? $"slot {slot} not held at this moment: its next holder takes it" : $"slot {slot} held by {holder.Id} on {holder.Host}")})";
            }

            // The registry is read no more often than workers beat: each read is a query on the store they share.
            return new Runner(() => Live().Count > 0, Taker,
                $"no worker of '{recipe}' is running in the cluster ({services.Metadata.Path}): the worker holding the slot takes the snapshot beside its stream. Start the workers (sluice run {recipe} --cluster) and ask again.",
                $"no worker of '{recipe}' has beaten for {Gone.TotalSeconds:0} s: they stopped before the snapshot was done; it goes on from its last committed chunk when a worker (sluice run {recipe} --cluster) starts again.",
                WorkerRegistry.HeartbeatEvery);
        }
    }

    /// <summary>True while a run or demo of the recipe holds its run lock.</summary>
    private static bool IsLocked(string lockPath)
    {
        using var probe = ProcessLock.TryAcquire(lockPath);
        return probe is null;
    }
}
