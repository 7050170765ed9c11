using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;
using Sluice.Jobs;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// Runs a recipe: its pipelines' sources, the jobs they declare to run after each load, and its cron schedules.
/// Shutdown order on cancellation: sources stop claiming and drain what they hold (bounded by their own drain
/// timeouts); a job in progress is cancelled (jobs commit atomically, so that leaves the previous state), the
/// scheduler stops; then the HTTP server, and everything is disposed. A component that fails stops the run the same
/// way, at once. The whole stop, disposal included, has one deadline (<see cref="StopTimeout"/> from the stop signal,
/// plus <see cref="CloseMargin"/> to close); its start and, while it lasts, what it still waits for are logged.
/// </summary>
public sealed class RecipeHost : IAsyncDisposable
{
    private static readonly TimeSpan ReplayPoll = TimeSpan.FromMilliseconds(500);

    private readonly Recipe _recipe;
    private readonly IEngineServices _services;
    private readonly ILogger _log;
    private readonly JobRunner _runner;
    private readonly List<(PipelineDefinition Definition, IRunnableSource Source)> _pipelines = [];
    private readonly HostStatus _status;
    private CronScheduler? _scheduler;
    private readonly Alerts.AlertMonitor? _alerts;
    private readonly StopProgress _stopping;
    private readonly Lock _stopLock = new();
    private DateTimeOffset? _stopDeadline;
    private readonly TaskCompletionSource _stopBegan = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RecipeHost(Recipe recipe, IEngineServices services)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(services);
        _recipe = recipe;
        _services = services;
        _log = services.Logging.CreateLogger("Sluice.Host");
        _runner = new JobRunner(services, services.Logging.CreateLogger("Sluice.Jobs"));
        // On a cluster's shared store the sweep runs on one worker at a time, and not at all without a shared lake folder.
        services.Lake.SweepOrphans();
        var unknown = services.Lake.UnknownFiles();
        if (unknown.Count > 0)
        {
            HostLog.UnknownLakeFiles(_log, unknown.Count, services.Lake.Root, unknown[0]);
        }

        foreach (var p in recipe.Pipelines)
        {
            _pipelines.Add((p, Cluster.StandByPipeline.Create(p, services, recipe.Name)));
        }

        _status = new HostStatus(recipe, services, _pipelines);
        Operations = new RecipeOperations(this, recipe, services);
        _alerts = recipe.Alerts is { } alerts ? new Alerts.AlertMonitor(recipe.Name, alerts, services) : null;
        _stopping = new StopProgress(recipe.Name, _log, services.Time);
    }

    /// <summary>What the stopping hosts of this process still wait for (a second Ctrl-C names it as abandoned).</summary>
    public static IReadOnlyList<string> StillStopping() => StopProgress.StillStopping();

    /// <summary>When every host of this process that began a stop should have closed (its deadline and close margin); null before any stop.</summary>
    public static DateTimeOffset? StopsClosedBy => StopProgress.ClosedBy;

    /// <summary>What an operator can ask of this host while it runs (the console's routes; <c>sluice dlq replay</c> beside it).</summary>
    public RecipeOperations Operations { get; }

    /// <summary>When the running scheduler fires the job next; null before the run, with schedules off, or without a schedule.</summary>
    public DateTimeOffset? NextRunAt(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return _scheduler?.NextRunAt(job.FullName);
    }

    /// <summary>The recipe's alerts (null when it declares none); checked while <see cref="RunAsync"/> runs.</summary>
    public Alerts.AlertMonitor? Alerts => _alerts;

    public IReadOnlyList<IRunnableSource> Sources => _pipelines.Select(p => p.Source).ToList();

    /// <summary>What can replay this recipe's dead letters: stream pipelines (for their source and sinks) and jobs (a reminder's failed delivery).</summary>
    public IReadOnlyList<Core.DeadLetters.IDeadLetterReplayer> CreateReplayers() => Sources.OfType<Core.DeadLetters.IDeadLetterReplayer>()
        .Concat(_recipe.Jobs.Select(j => j.Factory.Create(_services)).OfType<Core.DeadLetters.IDeadLetterReplayer>()).ToList();

    /// <summary>Where the HTTP server listens when the recipe serves HTTP (<c>--bind</c>, <c>--port</c>); <see cref="RunOnceAsync"/> opens no port.</summary>
    public Serving.HttpServerOptions Http { get; init; } = new();

    /// <summary>
    /// Open the port for the management routes (<c>/healthz</c>, <c>/readyz</c>, <c>/metrics</c>, <c>/api/status</c>)
    /// even when no component serves HTTP (<c>sluice run</c> does); otherwise the server starts only for components.
    /// </summary>
    public bool ServeManagement { get; init; }

    /// <summary>False: no job fires on its schedule (jobs then run only when asked, as in a walkthrough with <c>--now</c>).</summary>
    public bool Schedules { get; init; } = true;

    /// <summary>Components of this recipe that serve HTTP (through their pipeline's stream source).</summary>
    public IReadOnlyList<Serving.IHttpEndpoints> HttpComponents => _pipelines
        .Select(p => p.Source is Core.Pipeline.StreamPipeline s ? s.Source : (object)p.Source)
        .Concat(_pipelines.SelectMany(p => p.Source is Core.Pipeline.StreamPipeline s ? s.Sinks : []))
        .OfType<Serving.IHttpEndpoints>().ToList();

    /// <summary>Completes with the server's address once it listens (never, for a recipe without HTTP).</summary>
    public Task<Uri> HttpStarted => _httpStarted.Task;

    /// <summary>The server, once it listens (tests read its routes).</summary>
    internal Serving.SluiceHttpServer? Server { get; private set; }

    private readonly TaskCompletionSource<Uri> _httpStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Job outcomes as they happen (the demo prints them).</summary>
    public event Action<JobDefinition, JobOutcome>? JobCompleted;

    /// <summary>
    /// Processes everything available now, then runs every after-load job once. After-load jobs run even when nothing
    /// new landed: a crash may have come between a commit and its job, and the jobs skip work that is already done.
    /// </summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        var units = 0;
        foreach (var (_, source) in _pipelines)
        {
            units += await source.RunOnceAsync(ct).ConfigureAwait(false);
        }

        foreach (var job in AfterLoadJobs(_pipelines.Select(p => p.Definition)))
        {
            await RunJobAsync(job, _services.Time.GetUtcNow(), "after_load", ct).ConfigureAwait(false);
        }

        // A source that stopped short of what it holds (a damaged landing log) says why: the run-once fails with it.
        if (HttpComponents.Select(c => c.Unhealthy).OfType<string>().FirstOrDefault() is { } problem)
        {
            throw new SluiceException(problem);
        }

        return units;
    }

    /// <summary>
    /// Runs until <paramref name="ct"/> is cancelled, or until a component fails: then the failure is logged at once,
    /// reported to <see cref="IEngineServices.Health"/>, the other components stop as they do on Ctrl-C (draining within
    /// their bounds), and this throws a <see cref="ComponentFailedException"/> naming the component and the reason.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        // Cancelled by the caller (Ctrl-C) or by the first failure: the others then stop in the same orderly way.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // The stop's deadline starts from the signal itself, not from the stop token's callbacks: a token runs its
        // callbacks one after another, last registered first, and one that blocks (a driver sending its cancel request
        // to a server under load) would hold every later one, the host's own wake-up among them. So this is registered
        // on the caller's token after the link, to run before the link's cascade, and the bounded wait below waits on it.
        await using var onSignal = ct.Register(() => BeginStop("stop signal")).ConfigureAwait(false);
        var afterLoad = new AfterLoadTrigger(AfterLoadJobs(_pipelines.Select(p => p.Definition)), (job, t) => RunJobAsync(job, _services.Time.GetUtcNow(), "after_load", t), _services, _log);
        // On a cluster's shared store each slot is claimed once across the workers, and a dead runner's slot re-run once.
        var scheduler = new CronScheduler(Schedules ? _recipe.Jobs : [], (job, asOf, t) => _runner.RunSlotAsync(job, asOf, lease =>
            RunJobAsync(job, new JobRequest(asOf, Trigger: "schedule"), null, t, claimed: lease)), _services.Time, _log);
        var takeover = new JobTakeover(_runner, Schedules ? _recipe.Jobs : [], (job, lease, t) =>
            RunJobAsync(job, new JobRequest(lease.AsOf, Trigger: "rerun"), null, t, claimed: lease), _services.Time, _log);
        _scheduler = scheduler;
        Operations.Attach(stop.Token);
        using var registered = _services.Running?.Register(Operations);
        var server = await StartHttpAsync(ct).ConfigureAwait(false);
        _status.Running();
        // Said once the port is open: a script (or the docs test) may send requests as soon as it reads this line.
        HostLog.Started(_log, _recipe.Name, _pipelines.Count, scheduler.Count);
        var components = new List<(string Name, Task Task)>
        {
            ("after-load jobs", afterLoad.RunAsync(stop.Token)),
            ("scheduler", scheduler.RunAsync(stop.Token)),
            ("job take-over", takeover.RunAsync(stop.Token)),
            ("dead-letter replay requests", ServeReplayRequestsAsync(stop.Token)),
            ("status sampler", _services.Status.RunSamplerAsync(stop.Token)),
            ("recipe file watch", new RecipeFileWatch(_recipe, _services).RunAsync(stop.Token)),
        };
        if (_alerts is not null) { components.Add(("alerts", _alerts.RunAsync(stop.Token))); }
        components.AddRange(_pipelines.Select(p => (HostStatus.ComponentName(p.Definition), p.Source.RunAsync(afterLoad.SignalAsync, stop.Token))));
        foreach (var (name, task) in components) { _stopping.Add(name, task); }
        // From here every wait of the stop counts against one deadline, and the stop says what it still waits for.
        ComponentFailedException? failure;
        try
        {
            failure = await WaitBoundedAsync(WatchAsync(components, stop)).ConfigureAwait(false);
        }
        finally
        {
            BeginStop("the run ended");
            // Requests in flight finish (their events are already in the landing log, which outlives the server).
            _status.Withdraw();
            _status.Stopped();
            if (server is not null)
            {
                using (_stopping.Step("HTTP server"))
                {
                    await BoundedAsync(server.DisposeAsync().AsTask(), StopLeft(StopMargin)).ConfigureAwait(false);
                }
            }

            // Runs and backfills started from the console observe the same stop; they end (recorded) before disposal.
            using (_stopping.Step("console job runs"))
            {
                await Operations.DrainAsync(StopLeft(StopMargin)).ConfigureAwait(false);
            }
        }

        if (failure is not null)
        {
            throw failure;
        }

        HostLog.Stopped(_log, _recipe.Name);
    }

    /// <summary>
    /// Waits for every component to end. Ending because of the stop is normal; anything else a component throws is a
    /// failure it could not recover from (components retry what is transient themselves): the first one stops the rest.
    /// </summary>
    private async Task<ComponentFailedException?> WatchAsync(List<(string Name, Task Task)> components, CancellationTokenSource stop)
    {
        ComponentFailedException? failure = null;
        foreach (var (name, _) in components)
        {
            // A failure of an earlier run of this recipe in this process is history.
            _services.Health.Clear($"{_recipe.Name}: {name}");
        }

        var pending = components.ToList();
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending.Select(c => c.Task)).ConfigureAwait(false);
            var index = pending.FindIndex(c => c.Task == done);
            var name = pending[index].Name;
            pending.RemoveAt(index);
            // An async method that ends with an OperationCanceledException is cancelled, not faulted.
            if (done.Exception?.InnerException is not { } error || (error is OperationCanceledException && stop.IsCancellationRequested))
            {
                continue;
            }

            var reason = ComponentFailedException.ReasonOf(error);
            if (error is not SluiceException)
            {
                HostLog.FailureDetail(_log, error, _recipe.Name, name);
            }

            if (failure is not null)
            {
                HostLog.AlsoFailed(_log, _recipe.Name, name, reason);
                continue;
            }

            HostLog.ComponentFailed(_log, _recipe.Name, name, reason);
            _services.Health.Fail($"{_recipe.Name}: {name}", reason);
            _status.Failed(name, reason);
            failure = new ComponentFailedException(_recipe.Name, name, reason, error);
            BeginStop("a component failed");
            await stop.CancelAsync().ConfigureAwait(false);
        }

        return failure;
    }

    /// <summary>
    /// The longest a stop may take before the process gives up waiting: the longest drain of any source, plus a margin for a
    /// cancelled job and the scheduler. Each part bounds its own drain; this bounds them all, in case one does not observe
    /// the stop (a stalled loop must never leave SIGTERM unanswered).
    /// </summary>
    public TimeSpan StopTimeout => _pipelines.Select(p => p.Source.DrainTimeout).DefaultIfEmpty(TimeSpan.Zero).Max() + StopMargin;

    private static readonly TimeSpan StopMargin = TimeSpan.FromSeconds(10);

    /// <summary>
    /// After <see cref="StopTimeout"/>, what the sources still get to close (their connections, files): a source that
    /// overran its stop is disposed within this, or left to the process's exit.
    /// </summary>
    public static readonly TimeSpan CloseMargin = TimeSpan.FromSeconds(5);

    /// <summary>Once, at the first of a stop signal, a failure or the run's end: says so, and starts the stop's one deadline.</summary>
    private void BeginStop(string reason)
    {
        lock (_stopLock)
        {
            if (_stopDeadline is not null) { return; }
            _stopDeadline = _services.Time.GetUtcNow() + StopTimeout;
        }

        _stopping.Begin(reason, StopTimeout, CloseMargin);
        _stopBegan.TrySetResult();
    }

    /// <summary>What is left of the stop's deadline, at most <paramref name="most"/> (all of it before a stop began).</summary>
    private TimeSpan StopLeft(TimeSpan most)
    {
        if (_stopDeadline is not { } deadline) { return most; }
        var left = deadline - _services.Time.GetUtcNow();
        return left < TimeSpan.Zero ? TimeSpan.Zero : left < most ? left : most;
    }

    /// <summary>Waits for <paramref name="work"/> at most <paramref name="bound"/>; past it the stop goes on without it (the periodic line has named it).</summary>
    private async Task BoundedAsync(Task work, TimeSpan bound)
    {
        try
        {
            await work.WaitAsync(bound, _services.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            HostLog.StopTimedOut(_log, _recipe.Name, StopTimeout.TotalSeconds);
        }
    }

    /// <summary>Until <paramref name="all"/> ends, or once the stop began (a signal, a failure), at most what is left of <see cref="StopTimeout"/>.</summary>
    private async Task<T> WaitBoundedAsync<T>(Task<T> all)
    {
        await Task.WhenAny(all, _stopBegan.Task).ConfigureAwait(false);
        try
        {
            return await all.WaitAsync(StopLeft(StopTimeout), _services.Time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            HostLog.StopTimedOut(_log, _recipe.Name, StopTimeout.TotalSeconds);
            throw new SluiceException($"{_recipe.Name}: did not stop within {StopTimeout.TotalSeconds:0} s of the stop signal; exiting without waiting further (anything not committed is read again at the next start)");
        }
    }

    /// <summary>One server per process for every component of the recipe that serves HTTP.</summary>
    private async Task<Serving.SluiceHttpServer?> StartHttpAsync(CancellationToken ct)
    {
        foreach (var p in _pipelines)
        {
            if (p.Source is Core.Pipeline.StreamPipeline { Source: Serving.IHttpEndpoints endpoints } pipeline)
            {
                endpoints.AttachSinks(pipeline.SinkCheckpoints);
            }
        }

        var components = HttpComponents;
        if (components.Count == 0 && !ServeManagement)
        {
            return null;
        }

        try
        {
            var server = await Serving.SluiceHttpServer.StartAsync(_services, Http, components, ct).ConfigureAwait(false);
            Server = server;
            _status.Announce(server.Address, server.ManagementKey);
            _httpStarted.TrySetResult(server.Address);
            return server;
        }
        catch (Exception e)
        {
            _httpStarted.TrySetException(e);
            throw;
        }
    }

    public Task<JobOutcome> RunJobAsync(JobDefinition job, DateTimeOffset asOf, string trigger, CancellationToken ct) =>
        RunJobAsync(job, new JobRequest(asOf, Trigger: trigger), null, ct);

    /// <param name="runner">Null: the host's own (which waits for another process's run of the job).</param>
    /// <param name="started">Told the run's id once it is recorded (see <see cref="JobRunner.RunAsync"/>).</param>
    /// <param name="claimed">A run started already with its cluster lease (a scheduled slot, a re-run).</param>
    internal async Task<JobOutcome> RunJobAsync(JobDefinition job, JobRequest request, JobRunner? runner, CancellationToken ct, Action<long>? started = null, JobLease? claimed = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        var outcome = await _status.RunJobAsync(job, () => (runner ?? _runner).RunAsync(job, request, ct, started, claimed)).ConfigureAwait(false);
        SchedulerLog.Ran(_log, job.FullName, outcome.Message);
        JobCompleted?.Invoke(job, outcome);
        return outcome;
    }

    /// <summary>
    /// Replays that <c>sluice dlq replay</c> hands to this process (see <see cref="DeadLetters.ReplayRequests"/>): only
    /// the running host may write its sources' state, a stream's landing log for one.
    /// </summary>
    private async Task ServeReplayRequestsAsync(CancellationToken ct)
    {
        var requests = new Core.DeadLetters.ReplayRequests(_services.Data, _recipe.Name);
        while (true)
        {
            IReadOnlyList<long> pending;
            try
            {
                pending = requests.Pending();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The request folder is the operator's to clean up: a failed look is retried, it never stops the run.
                HostLog.ReplayRequestsUnreadable(_log, _recipe.Name, e.Message);
                pending = [];
            }

            foreach (var id in pending)
            {
                string? error;
                try
                {
                    var letter = _services.DeadLetters.Get(id);
                    error = letter is null ? $"no dead letter with id {id}"
                        // Replayed already (by an earlier look whose answer could not be written): not a second time.
                        : letter.Status == Core.DeadLetters.DeadLetterStore.Replayed ? null
                        // Shared with the console's replays, so one letter is never replayed by both at once.
                        : (await Operations.ReplayAsync([letter], ct).ConfigureAwait(false))[0].Error;
                }
                catch (Exception e) when (e is SluiceException or IOException or InvalidOperationException)
                {
                    error = e.Message;
                }

                try
                {
                    requests.Complete(id, error);
                    HostLog.ReplayServed(_log, _recipe.Name, id, error ?? "replayed");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    HostLog.ReplayRequestsUnreadable(_log, _recipe.Name, e.Message);
                }
            }

            await Task.Delay(ReplayPoll, _services.Time, ct).ConfigureAwait(false);
        }
    }

    private List<JobDefinition> AfterLoadJobs(IEnumerable<PipelineDefinition> pipelines) =>
        pipelines.SelectMany(p => p.AfterLoad).Distinct(StringComparer.Ordinal).Select(n => _recipe.Job(n)!).ToList();

    public async ValueTask DisposeAsync()
    {
        Operations.Dispose();
        if (_alerts is not null) { await _alerts.DisposeAsync().ConfigureAwait(false); }
        // All at once, within what is left of the stop (at least the close margin): a sink's background work that
        // ignores its cancellation must not hold the exit, and one slow close must not queue the others behind it.
        var closes = _pipelines.Select(p =>
        {
            var step = _stopping.Step($"closing {HostStatus.ComponentName(p.Definition)}");
            return CloseAsync(p.Source, step);
        }).ToList();
        var bound = StopLeft(StopMargin);
        await BoundedAsync(Task.WhenAll(closes), bound < CloseMargin ? CloseMargin : bound).ConfigureAwait(false);
        await _stopping.DisposeAsync().ConfigureAwait(false);
    }

    private static async Task CloseAsync(IRunnableSource source, IDisposable step)
    {
        using (step)
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }
    }
}

internal static partial class HostLog
{
    [LoggerMessage(3001, LogLevel.Information, "{Recipe}: running {Pipelines} pipeline(s) and {Schedules} schedule(s); Ctrl-C stops")]
    public static partial void Started(ILogger logger, string recipe, int pipelines, int schedules);

    [LoggerMessage(3002, LogLevel.Information, "{Recipe}: stopped cleanly")]
    public static partial void Stopped(ILogger logger, string recipe);

    [LoggerMessage(3003, LogLevel.Error, "{Job}: after-load run failed")]
    public static partial void AfterLoadFailed(ILogger logger, Exception error, string job);

    [LoggerMessage(3004, LogLevel.Warning, "{Job}: after-load run failed: {Reason}")]
    public static partial void AfterLoadRefused(ILogger logger, string job, string reason);

    [LoggerMessage(10001, LogLevel.Error, "{Job}: after-load run met a full disk: no space left on device ({Detail}); it is run again every {RetrySeconds} s until it succeeds")]
    public static partial void AfterLoadWaitsForSpace(ILogger logger, string job, string detail, int retrySeconds);

    [LoggerMessage(3005, LogLevel.Information, "{Recipe}: dead letter {Id}, replay requested by sluice dlq replay: {Outcome}")]
    public static partial void ReplayServed(ILogger logger, string recipe, long id, string outcome);

    [LoggerMessage(9203, LogLevel.Error, "{Recipe}: still stopping {Seconds} s after the stop signal; exiting without waiting further")]
    public static partial void StopTimedOut(ILogger logger, string recipe, double seconds);

    [LoggerMessage(3006, LogLevel.Warning, "{Recipe}: the dead-letter replay requests cannot be read or answered: {Reason}")]
    public static partial void ReplayRequestsUnreadable(ILogger logger, string recipe, string reason);

    [LoggerMessage(9101, LogLevel.Error, "{Recipe}: {Component} failed, stopping the run: {Reason}")]
    public static partial void ComponentFailed(ILogger logger, string recipe, string component, string reason);

    [LoggerMessage(9102, LogLevel.Warning, "{Recipe}: {Component} also failed while the run stopped: {Reason}")]
    public static partial void AlsoFailed(ILogger logger, string recipe, string component, string reason);

    [LoggerMessage(9103, LogLevel.Debug, "{Recipe}: {Component} failed with an unexpected error")]
    public static partial void FailureDetail(ILogger logger, Exception error, string recipe, string component);

    [LoggerMessage(21996, LogLevel.Information, "{Recipe}: stopping ({Reason}), at most {Seconds} s: waiting for {Parts}")]
    public static partial void Stopping(ILogger logger, string recipe, string reason, double seconds, string parts);

    [LoggerMessage(21997, LogLevel.Warning, "{Recipe}: still stopping {Seconds:0} s after the stop began: {Parts}")]
    public static partial void StillStopping(ILogger logger, string recipe, double seconds, string parts);

    [LoggerMessage(9300, LogLevel.Warning, "{Count} Parquet file(s) under {Lake} are in no table's manifest (for example {Example}); they are left alone and not queried. Files copied in by hand are not part of the lake; if the manifest lost them, `sluice recover --force` rebuilds it from the files")]
    public static partial void UnknownLakeFiles(ILogger logger, int count, string lake, string example);
}
