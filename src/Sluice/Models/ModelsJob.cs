using Sluice.Connectors.OpenLineage;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Models;

/// <summary>The <c>models</c> job type: a recipe's SQL models, run day by day (see <see cref="DayProcessor"/>).</summary>
public sealed class ModelsJobType : IJobType
{
    public string Name => "models";

    public IJobFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        // The job's own name is the last part of its key path (jobs.<name>): the scope of its state and history.
        var job = options.KeyPath[(options.KeyPath.LastIndexOf('.') + 1)..];
        return new ModelsJobFactory(recipe.Name, job, ModelsOptions.Parse(options, recipe));
    }
}

public sealed class ModelsJobFactory(string recipe, string job, ModelsOptions options) : IJobFactory, ILineageTables, IWritesLakeTables, IReadsDataFolder
{
    /// <summary>Every model's table (in the lake when the engine is the embedded one).</summary>
    public IEnumerable<string> LakeTables => options.Project.Models.Select(m => m.Name);

    public string Recipe => recipe;

    public string Job => job;

    /// <summary><c>recipe/job</c>: model state, day records and run history are kept under it.</summary>
    public string Scope => $"{recipe}/{job}";

    public ModelsOptions Options => options;

    /// <summary>The engine to use instead of the configured one (tests, <c>--engine</c>); null: the recipe's, or <c>SLUICE_WAREHOUSE</c>.</summary>
    public WarehouseEngine? EngineOverride { get; init; }

    /// <summary>PostgreSQL settings to use instead of the environment's (tests, benchmarks).</summary>
    public Npgsql.NpgsqlConnectionStringBuilder? Postgres { get; init; }

    /// <summary>The models as they are on disk now, for a process that runs the job more than once (shared by <see cref="With"/> copies).</summary>
    public ModelProjectReloader Reloader { get; private init; } = new(options);

    public IJob Create(IEngineServices services) => new ModelsJob(services, this);

    /// <summary>A copy that runs on another engine or server (tests, benchmarks, <c>--engine</c>).</summary>
    public ModelsJobFactory With(WarehouseEngine? engine, Npgsql.NpgsqlConnectionStringBuilder? postgres = null) =>
        new(recipe, job, options) { EngineOverride = engine ?? EngineOverride, Postgres = postgres ?? Postgres, Reloader = Reloader };

    public (IReadOnlyList<LineageDataset> Inputs, IReadOnlyList<LineageDataset> Outputs) LineageTables(OpenLineageEmitter lineage) =>
        ModelLineage.Project(lineage, options.Project, options.EffectiveEngine(EngineOverride).ToString().ToLowerInvariant());

    public DayProcessor Processor(IEngineServices services, ModelProject? project = null) =>
        new(services, project ?? options.Project, Scope, () => Warehouses.Open(services, options, Scope, EngineOverride, Postgres));
}

/// <summary>
/// A run of the models job. After a load it processes the stale days (files or models changed); on its schedule or by
/// hand also every day up to the one it runs as of that never ran, and the look-back days; a backfill recomputes every
/// day of its range. All of it through
/// <see cref="DayProcessor"/>, so the result never depends on how the days were grouped into runs.
/// </summary>
public sealed class ModelsJob(IEngineServices services, ModelsJobFactory factory) : IJob
{
    public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var forced = new List<DateOnly>();
        DateOnly? asOf = null;
        if (request.From is { } from)
        {
            for (var d = from; d <= (request.To ?? from); d = d.AddDays(1)) { forced.Add(d); }
        }
        else if (request.Trigger != "after_load")
        {
            var day = DateOnly.FromDateTime(request.AsOf.UtcDateTime);
            asOf = day;
            for (var i = factory.Options.LookbackDays; i >= 1; i--) { forced.Add(day.AddDays(-i)); }
        }

        // Model files edited while the process runs are taken here, whole, or refused whole (ModelProjectReloader).
        var project = await factory.Reloader.CurrentAsync(services, factory, ct).ConfigureAwait(false);
        return await factory.Processor(services, project).ProcessAsync(new DayRequest(forced, asOf), request.Trigger, request.Progress, ct).ConfigureAwait(false);
    }
}
