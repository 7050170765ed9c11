using Sluice.Core.Config;

namespace Sluice.Core.Recipes;

/// <summary>
/// What every running component can use: the data folder, the stores, the clock, logging. The layers above Core (the
/// lake, OpenLineage, the hosts running in this process) are reached through <see cref="IServiceProvider.GetService"/>,
/// so Core names none of them; <c>EngineLayers</c> gives them back as properties (<c>services.Lake</c>, ...).
/// </summary>
public interface IEngineServices : IServiceProvider
{
    DataDirectory Data { get; }

    Metadata.MetadataStore Metadata { get; }

    DeadLetters.DeadLetterStore DeadLetters { get; }

    TimeProvider Time { get; }

    Microsoft.Extensions.Logging.ILoggerFactory Logging { get; }

    /// <summary>What is failing in this process and why (<c>/healthz</c> reports it).</summary>
    HealthState Health { get; }

    /// <summary>The figures of everything running in this process (<c>/metrics</c>, <c>/readyz</c>, <c>sluice status</c> read them).</summary>
    Status.StatusBoard Status { get; }
}

/// <summary>A source type registered by name (<c>files</c>, ...). It validates its options at load and builds the running source.</summary>
public interface ISourceType
{
    string Name { get; }

    ISourceFactory Parse(ConfigMap options, RecipeContext recipe);
}

public interface ISourceFactory
{
    IRunnableSource Create(IEngineServices services);
}

/// <summary>Marks a stream source factory that can also run without sinks (its <see cref="ISourceFactory.Create"/> does the whole job).</summary>
public interface IStandaloneSource
{
}

/// <summary>A running source. <see cref="RunOnceAsync"/> processes everything available now and returns how many units it committed.</summary>
public interface IRunnableSource : IAsyncDisposable
{
    Task<int> RunOnceAsync(CancellationToken ct);

    /// <summary>Runs until cancelled; <paramref name="afterLoad"/> is called after each commit that changed data.</summary>
    Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct);

    /// <summary>How long it may take to finish after a stop (its drain bound); the host waits no longer than the longest.</summary>
    TimeSpan DrainTimeout => TimeSpan.FromSeconds(10);
}

/// <summary>A job type registered by name (<c>daily_summary</c>, ...).</summary>
public interface IJobType
{
    string Name { get; }

    IJobFactory Parse(ConfigMap options, RecipeContext recipe);
}

public interface IJobFactory
{
    IJob Create(IEngineServices services);
}

/// <summary>
/// A job factory whose job keeps its state where every worker of a cluster reaches it and runs under the job run's
/// lease (<c>JobFence</c>), so cluster mode may run it (<c>ClusterJobs</c>; a recipe plug-in's job says so itself).
/// </summary>
public interface IClusterJobFactory
{
    /// <summary>Why cluster mode cannot run the job as configured (a variable to set for every worker), or null when it can.</summary>
    string? ClusterProblem(Func<string, string?> variable);
}

/// <summary>
/// A job factory whose job keeps its own progress where every worker of a cluster reaches it: a run of it that was
/// interrupted (its runner died), whatever started it, is re-run by the worker that takes it over (trigger
/// <c>rerun</c>, no range; a re-run that dies is re-run too, three times at most), and that re-run goes on where the
/// interrupted one stopped (<c>JobLeases.TakeOverExpired</c>;
/// a cluster's <c>postgres_backfill</c>).
/// </summary>
public interface IResumableJob;

/// <summary>
/// A job whose input is what its recipe landed in the data folder (the lake): run on a folder that holds nothing of
/// the recipe it would succeed on nothing, so <c>job run</c> and <c>backfill</c> refuse that (<c>RecipeFootprint</c>).
/// </summary>
public interface IReadsDataFolder;

public interface IJob
{
    /// <summary>
    /// Runs the job as of <see cref="JobRequest.AsOf"/> (or over <see cref="JobRequest.From"/>..<see cref="JobRequest.To"/> for a backfill).
    /// Must be idempotent: running it twice with the same inputs gives the same result.
    /// </summary>
    Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct);
}

public sealed record JobRequest(DateTimeOffset AsOf, DateOnly? From = null, DateOnly? To = null, IProgress<JobProgress>? Progress = null, string Trigger = "manual")
{
    /// <summary>A backfill's exact start (inclusive), for jobs that work on instants rather than days: <c>--from</c> as given, or the start of its day.</summary>
    public DateTimeOffset? FromTime { get; init; }

    /// <summary>A backfill's exact end (exclusive): <c>--to</c> as given when it is an instant, or the end of its day when it is a date.</summary>
    public DateTimeOffset? ToTime { get; init; }
}

public sealed record JobProgress(long Done, long Total, string What);

public sealed record JobOutcome(long RowsIn, long RowsOut, string Message);

/// <summary>Where a recipe's options are being read from, for relative paths and error messages.</summary>
public sealed record RecipeContext(string Name, string Folder, ConfigErrors Errors)
{
    /// <summary>The registry the recipe is loaded with (its plug-ins; a job that loads the recipe again uses the same).</summary>
    public ComponentRegistry? Components { get; init; }
}

/// <summary>
/// A top-level section of <c>recipe.yaml</c> beside <c>pipelines</c> and <c>jobs</c> (<c>alerts:</c>), parsed after
/// them so it can check the names it refers to. Registered in the <see cref="ComponentRegistry"/>, so the loader in Core
/// knows no section's type.
/// </summary>
public interface IRecipeSection
{
    string Name { get; }

    /// <summary>What the section is for, as the reference (docs/reference/recipe.md) shows its key.</summary>
    string? Doc => null;

    /// <summary>The section's options (null when the recipe has none or they are invalid; problems go to the recipe's errors).</summary>
    object? Parse(ConfigMap? map, RecipeContext recipe, IReadOnlyList<PipelineDefinition> pipelines, IReadOnlyList<JobDefinition> jobs, IReadOnlyCollection<string> tables);
}

/// <summary>
/// A file a plug-in's components read from the recipe's folder besides recipe.yaml (<c>store.yaml</c>): its name and its
/// parser run on a describing map, so docs/reference/recipe.md shows its keys.
/// </summary>
public sealed record RecipeFile(string Name, Action<ConfigMap> Describe);

/// <summary>A component factory that knows the lake tables it writes (<c>zone.table</c>), so a recipe's references to them can be checked at load.</summary>
public interface IWritesLakeTables
{
    IEnumerable<string> LakeTables { get; }
}
