using System.Collections.Concurrent;

namespace Sluice.Core.Status;

/// <summary>
/// The figures of everything running in this process, in one place: each pipeline (records, batches, sinks, lag,
/// backlog, state and last error), each job (last and next run), and a short history per pipeline. <c>/metrics</c>,
/// <c>/readyz</c>, <c>/api/status</c>, <c>sluice status</c> and the console all read this, so they always agree.
/// Components only add to counters and set a few fields; everything else is computed when read. One per process
/// (<see cref="Recipes.IEngineServices.Status"/>); bounded by the recipes' size, not by time or traffic.
/// </summary>
public sealed class StatusBoard(TimeProvider time)
{
    /// <summary>How often the history takes a sample: fine enough for a plot of the last hour, 360 points.</summary>
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(10);

    /// <summary>Samples kept per pipeline (one hour at <see cref="SampleInterval"/>).</summary>
    public const int HistoryLength = 360;

    private readonly ConcurrentDictionary<string, PipelineStatus> _pipelines = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JobStatus> _jobs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<IReadOnlyList<DeadLetterCount>>> _deadLetters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<IReadOnlyList<AlertView>>> _alerts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RecipeShape> _shapes = new(StringComparer.Ordinal);
    private readonly Lock _sampling = new();
    private DateTimeOffset _lastSample = DateTimeOffset.MinValue;

    public TimeProvider Time => time;

    public DateTimeOffset Started { get; } = time.GetUtcNow();

    /// <summary>The pipeline's figures, created on first use; a pipeline started again (a second run in one process) keeps counting.</summary>
    public PipelineStatus Pipeline(string recipe, string pipeline, string sourceType) =>
        _pipelines.GetOrAdd($"{recipe}/{pipeline}", _ => new PipelineStatus(recipe, pipeline, sourceType, time));

    public PipelineStatus? Find(string qualifiedName) => _pipelines.GetValueOrDefault(qualifiedName);

    public JobStatus Job(string recipe, string job, string? schedule) =>
        _jobs.GetOrAdd($"{recipe}/{job}", _ => new JobStatus(recipe, job, schedule, time));

    public IReadOnlyList<PipelineStatus> Pipelines => _pipelines.Values.OrderBy(p => p.QualifiedName, StringComparer.Ordinal).ToList();

    public IReadOnlyList<JobStatus> Jobs => _jobs.Values.OrderBy(j => j.QualifiedName, StringComparer.Ordinal).ToList();

    /// <summary>A running recipe's shape, for the console's graph (one per recipe; a recipe started again replaces it).</summary>
    public void Describe(RecipeShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        _shapes[shape.Name] = shape;
    }

    public IReadOnlyList<RecipeShape> Recipes => _shapes.Values.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();

    /// <summary>How a recipe's pending dead letters are counted (by source and reason class), read when figures are read.</summary>
    public void DeadLettersOf(string recipe, Func<IReadOnlyList<DeadLetterCount>> count) => _deadLetters[recipe] = count;

    /// <summary>How a recipe's alerts are read (its alert monitor's states), read when figures are read.</summary>
    public void AlertsOf(string recipe, Func<IReadOnlyList<AlertView>> alerts) => _alerts[recipe] = alerts;

    /// <summary>Every recipe's alerts, by recipe and name.</summary>
    public IReadOnlyList<AlertView> Alerts => _alerts.OrderBy(a => a.Key, StringComparer.Ordinal).SelectMany(a => a.Value()).ToList();

    /// <summary>Takes a history sample of every pipeline when <see cref="SampleInterval"/> has passed since the last (any caller may ask; only one sample is taken per interval).</summary>
    public bool SampleIfDue()
    {
        var now = time.GetUtcNow();
        lock (_sampling)
        {
            if (now - _lastSample < SampleInterval) { return false; }
            _lastSample = now;
        }

        foreach (var p in _pipelines.Values) { p.History.Add(p.Sample(now)); }
        return true;
    }

    /// <summary>Samples every <see cref="SampleInterval"/> until cancelled (each running recipe host runs this; the samples are not doubled).</summary>
    public async Task RunSamplerAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(SampleInterval, time);
        SampleIfDue();
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            SampleIfDue();
        }
    }

    /// <summary>Everything, as of now (what <c>/api/status</c> answers and <c>sluice status</c> prints).</summary>
    public StatusSnapshot Snapshot(bool history = false)
    {
        var now = time.GetUtcNow();
        var letters = _deadLetters.SelectMany(d => Safe(d.Value).Select(c => c with { Recipe = d.Key })).ToList();
        return new StatusSnapshot(
            now.UtcDateTime, Started.UtcDateTime, Environment.ProcessId,
            Pipelines.Select(p => p.View(now, history)).ToList(),
            Jobs.Select(j => j.View(now)).ToList(),
            letters) { Alerts = Alerts, Workers = FromSharedStore(Workers), Snapshots = FromSharedStore(Snapshots) };
    }

    /// <summary>How the cluster's workers are read (the shared worker registry), set by a cluster worker; null in a single process.</summary>
    public Func<IReadOnlyList<WorkerView>>? Workers { get; set; }

    /// <summary>How the cluster's CDC snapshot requests are read (the shared store), set by a cluster worker; null in a single process.</summary>
    public Func<IReadOnlyList<SnapshotRequestView>>? Snapshots { get; set; }

    /// <summary>A shared store that does not answer leaves the cluster's part out; the rest of the status still answers.</summary>
    private static IReadOnlyList<T> FromSharedStore<T>(Func<IReadOnlyList<T>>? read)
    {
        try
        {
            return read?.Invoke() ?? [];
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            return [];
        }
    }

    /// <summary>A failed count must not take the status page down with it: the letters then show as none, the rest still answers.</summary>
    private static IReadOnlyList<DeadLetterCount> Safe(Func<IReadOnlyList<DeadLetterCount>> count)
    {
        try
        {
            return count();
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or InvalidOperationException)
        {
            return [];
        }
    }
}
