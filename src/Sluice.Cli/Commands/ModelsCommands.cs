using System.CommandLine;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Jobs;
using Sluice.Lake;
using Sluice.Models;

namespace Sluice.Cli.Commands;

internal static class ModelsCommands
{
    private static readonly Option<string?> Job = new("--job") { Description = "The recipe's models job, when it has several" };
    private const string SelectHelp = "Only these models, in dependency order: schema.name, +name (with what it reads), name+ (with what reads it), tag:x; default all";

    private static readonly Option<string?> Engine = new("--engine") { Description = "duckdb or postgres, instead of the recipe's (or $SLUICE_WAREHOUSE)" };

    public static Command Create()
    {
        var command = new Command("models", "SQL models: run them in dependency order, test them, list them");
        command.Subcommands.Add(CreateRun());
        command.Subcommands.Add(CreateTest());
        command.Subcommands.Add(CreateList());
        command.Subcommands.Add(CreateShow());
        command.Subcommands.Add(CreateBuild());
        command.Subcommands.Add(CreateRelease());
        return command;
    }

    private static Command CreateRun()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name or folder" };
        var select = new Option<string[]>("--select") { Description = SelectHelp, AllowMultipleArgumentsPerToken = true };
        var date = new Option<string?>("--date") { Description = "Run as of this date (YYYY-MM-DD, UTC); default today" };
        var start = new Option<string?>("--event-time-start") { Description = "Recompute every day from this one (YYYY-MM-DD, UTC), whatever its fingerprints say" };
        var end = new Option<string?>("--event-time-end") { Description = "... through this one, inclusive (default: --date, or today)" };
        var command = new Command("run", "Run the models as of a date: every stale day up to it (changed inputs or models, days never run); every run is in 'sluice job history'")
        {
            recipe, select, date, start, end, Job, Engine,
        };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (definition, factory) = Find(result.GetValue(recipe)!, result.GetValue(Job), result.GetValue(Engine));
            OnCluster(result, definition, factory, (result.GetValue(select) ?? []).Length > 0 ? "models run --select" : null);
            using var services = CliContext.RecipeServices(result, definition.Recipe);
            var asOf = JobCommands.AsOf(result.GetValue(date), null, services.Time);
            var day = DateOnly.FromDateTime(asOf.UtcDateTime);
            var selected = result.GetValue(select) ?? [];
            JobOutcome outcome;
            var range = EventTimeRange(result.GetValue(start), result.GetValue(end), day);
            if (range is not null && selected.Length > 0)
            {
                throw new SluiceException("--event-time-start/--event-time-end recompute every model of the range; leave out --select (or use models build --select for one day).");
            }

            if (selected.Length == 0)
            {
                var runner = new JobRunner(services);
                outcome = await JobCommands.WithProgressAsync($"models run {definition.FullName}", progress =>
                    runner.RunAsync(definition with { Factory = factory }, new JobRequest(asOf, range?.From, range?.To, progress, "manual"), ct)).ConfigureAwait(false);
            }
            else
            {
                var models = factory.Options.Project.Select(selected.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList());
                using var held = await ProcessLock.AcquireAsync(JobRunner.LockFile(services.Data, definition.Recipe, definition.Name), services.Time, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
                outcome = await factory.Processor(services).RunSelectedAsync(models, day, "manual", $"sluice backfill {definition.FullName} --from {day:yyyy-MM-dd} --to <last day>", ct).ConfigureAwait(false);
            }

            await Console.Out.WriteLineAsync($"{definition.FullName} as of {day:yyyy-MM-dd}: {outcome.Message}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>The forced range of <c>--event-time-start/--event-time-end</c>; null when neither is given.</summary>
    internal static (DateOnly From, DateOnly To)? EventTimeRange(string? start, string? end, DateOnly asOf)
    {
        if (start is null && end is null) { return null; }
        if (start is null) { throw new SluiceException("--event-time-end needs --event-time-start (the first day to recompute)."); }
        var from = JobCommands.Day(start, "--event-time-start");
        var to = end is null ? asOf : JobCommands.Day(end, "--event-time-end");
        if (to < from)
        {
            throw new SluiceException($"--event-time-end {to:yyyy-MM-dd} is before --event-time-start {from:yyyy-MM-dd}{(end is null ? " (the end defaults to --date, or today)" : "")}.");
        }

        return (from, to);
    }

    private static Command CreateTest()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name or folder" };
        var select = new Option<string[]>("--select") { Description = "Only the tests of these models", AllowMultipleArgumentsPerToken = true };
        var command = new Command("test", "Run the models' declared tests; exit 1 naming the model, column and example rows of each failure") { recipe, select, Job, Engine };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (definition, factory) = Find(result.GetValue(recipe)!, result.GetValue(Job), result.GetValue(Engine));
            OnCluster(result, definition, factory, null);
            using var services = CliContext.RecipeServices(result, definition.Recipe);
            var selected = (result.GetValue(select) ?? []).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var models = factory.Options.Project.Select(selected);
            var outcomes = await factory.Processor(services).TestAsync(models, ct).ConfigureAwait(false);
            await Console.Out.WriteAsync(ModelTestReport.Format(outcomes)).ConfigureAwait(false);
            return outcomes.All(o => o.Passed) ? 0 : 1;
        }));
        return command;
    }

    private static Command CreateList()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name or folder" };
        var format = CliOutput.FormatOption();
        var command = new Command("list", "The models in run order: kind, dependencies, sources, tests") { recipe, Job, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (_, factory) = Find(result.GetValue(recipe)!, result.GetValue(Job), null);
            var rows = factory.Options.Project.Models.Select((m, i) => new object?[]
            {
                i + 1, m.Name, m.Kind.ToString().ToLowerInvariant(), string.Join(", ", m.Dependencies), string.Join(", ", m.Sources), m.Tests.Count, m.File,
            }).ToList();
            await CliOutput.WriteAsync(result, new QueryResult(["order", "model", "kind", "depends_on", "sources", "tests", "file"], rows), result.GetValue(format)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command CreateBuild()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name or folder" };
        var select = new Option<string[]>("--select") { Description = SelectHelp, AllowMultipleArgumentsPerToken = true };
        var date = new Option<string?>("--date") { Description = "Run as of this date (YYYY-MM-DD, UTC); default today" };
        var command = new Command("build", "Run each model and then its tests, in dependency order; a model reading one that failed is skipped; exit 1 on any failure") { recipe, select, date, Job, Engine };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (definition, factory) = Find(result.GetValue(recipe)!, result.GetValue(Job), result.GetValue(Engine));
            OnCluster(result, definition, factory, "models build");
            using var services = CliContext.RecipeServices(result, definition.Recipe);
            var day = DateOnly.FromDateTime(JobCommands.AsOf(result.GetValue(date), null, services.Time).UtcDateTime);
            var selected = (result.GetValue(select) ?? []).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var models = factory.Options.Project.Select(selected);
            using var held = await ProcessLock.AcquireAsync(JobRunner.LockFile(services.Data, definition.Recipe, definition.Name), services.Time, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
            var outcomes = await factory.Processor(services).BuildAsync(models, day, "manual", $"sluice backfill {definition.FullName} --from {day:yyyy-MM-dd} --to <last day>", ct).ConfigureAwait(false);
            foreach (var o in outcomes)
            {
                var status = o.Passed ? "ok   " : o.Run is null && o.Error!.StartsWith("skipped", StringComparison.Ordinal) ? "SKIP " : "FAIL ";
                await Console.Out.WriteLineAsync($"{status}{o.Model.Name}: {o.Error ?? o.Run!.Message}").ConfigureAwait(false);
                if (o.Tests.Count > 0) { await Console.Out.WriteAsync(string.Concat(ModelTestReport.Format(o.Tests).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => $"      {l}\n"))).ConfigureAwait(false); }
            }

            return outcomes.All(o => o.Passed) ? 0 : 1;
        }));
        return command;
    }

    private static Command CreateShow()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name or folder" };
        var model = new Argument<string>("model") { Description = "The model (schema.name)" };
        var date = new Option<string?>("--date") { Description = "Compile as of this date (YYYY-MM-DD, UTC); default today" };
        var rows = new Option<int>("--rows") { Description = "How many of its rows to show (default 10)", DefaultValueFactory = _ => 10 };
        var command = new Command("show", "A model: its kind, inputs, compiled SQL for the engine, and its first rows") { recipe, model, date, rows, Job, Engine };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (_, factory) = Find(result.GetValue(recipe)!, result.GetValue(Job), result.GetValue(Engine));
            var found = factory.Options.Project.Select([result.GetValue(model)!])[0];
            var engine = factory.Options.EffectiveEngine(factory.EngineOverride);
            var dialect = engine == WarehouseEngine.Postgres ? SqlDialect.Postgres : SqlDialect.DuckDb;
            var day = DateOnly.FromDateTime(JobCommands.AsOf(result.GetValue(date), null, TimeProvider.System).UtcDateTime);
            await Console.Out.WriteLineAsync($"{found.Name}: {found.Kind.ToString().ToLowerInvariant()} ({found.File})").ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"reads: {string.Join(", ", found.Dependencies.Concat(found.Sources).DefaultIfEmpty("(nothing)"))}").ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"-- compiled for {dialect.Engine} as of {day:yyyy-MM-dd}").ConfigureAwait(false);
            await Console.Out.WriteLineAsync(found.Kind == ModelKind.Clean ? "(generated from the cleaning rules at run time)" : dialect.Render(found, day).Trim()).ConfigureAwait(false);
            var limit = Math.Max(0, result.GetValue(rows));
            if (limit == 0) { return 0; }
            var data = CliContext.Folder(result);
            if (!RecipeFootprint.Recipes(data).Contains(factory.Recipe))
            {
                // The compiled SQL is worth seeing without data; the rows are not there to show.
                await Console.Out.WriteLineAsync($"-- no rows to show: the data folder {data.Root} holds nothing of recipe '{factory.Recipe}' (sluice run {factory.Recipe} --once --data {data.Root} fills it)").ConfigureAwait(false);
                return 0;
            }

            using var services = CliContext.ExistingServices(result);
            var sql = $"SELECT * FROM {SqlDialect.QuoteName(found.Name)} LIMIT {limit}";
            QueryResult shown;
            try
            {
                if (engine == WarehouseEngine.DuckDb) { shown = services.Query.Query(sql); }
                else
                {
                    var warehouse = Warehouses.Open(services, factory.Options, factory.Scope, factory.EngineOverride, factory.Postgres);
                    await using (warehouse.ConfigureAwait(false)) { shown = await warehouse.QueryAsync(sql, limit, ct).ConfigureAwait(false); }
                }
            }
            catch (SluiceException e)
            {
                await Console.Out.WriteLineAsync($"-- no rows to show: {e.Message}").ConfigureAwait(false);
                return 0;
            }

            await Console.Out.WriteLineAsync($"-- first {limit} rows").ConfigureAwait(false);
            await Console.Out.WriteAsync(QueryResultFormatter.Format(shown, QueryFormat.Table)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command CreateRelease()
    {
        var table = new Argument<string>("table") { Description = "The model table (schema.name) whose claim to give up" };
        var recipe = new Option<string?>("--recipe") { Description = "Release only if this recipe's models job owns it (and look in that job's warehouse)" };
        var command = new Command("release", "Give up a models job's claim on a table so another recipe may build it; the table and its rows stay; refused while a run holds it")
        {
            table, recipe, Job, Engine,
        };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            WarehouseEngine engine;
            string? database = null;
            if (result.GetValue(recipe) is { } name)
            {
                var (_, factory) = Find(name, result.GetValue(Job), result.GetValue(Engine));
                engine = factory.Options.EffectiveEngine(factory.EngineOverride);
                database = factory.Options.Database;
            }
            else
            {
                var chosen = result.GetValue(Engine) is { } e ? ModelsOptions.ParseEngine(e) ?? throw new SluiceException($"--engine '{e}': expected duckdb or postgres.") : (WarehouseEngine?)null;
                engine = ModelsOptions.EffectiveEngine(chosen, WarehouseEngine.DuckDb);
            }

            // The embedded warehouse's claims live in the data folder; a PostgreSQL warehouse's in its database (the folder holds the job locks).
            using var services = engine == WarehouseEngine.DuckDb ? CliContext.ExistingServices(result) : CliContext.Services(result);
            var pg = engine == WarehouseEngine.Postgres ? Connectors.Postgres.PostgresConnectionOptions.FromEnvironment().WithDatabase(database).Builder() : null;
            var said = await ModelTableRelease.ReleaseAsync(services, pg, result.GetValue(table)!, result.GetValue(recipe) is { } r ? CliContext.LoadRecipe(r).Name : null, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(said).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// With <c>--cluster</c>: a models job runs whole under the job's lease in the shared store, as the workers' runs do,
    /// and its tests read its warehouse: a PostgreSQL server, or the shared lake (<c>SLUICE_CLUSTER_FOLDER</c>, required
    /// for the embedded warehouse and for models that read lake tables); a partial run (<paramref name="partial"/>,
    /// which holds no lease) is refused saying why.
    /// </summary>
    private static void OnCluster(ParseResult result, JobDefinition definition, ModelsJobFactory factory, string? partial)
    {
        if (!CliContext.IsCluster(result)) { return; }
        var job = definition with { Factory = factory };
        if (!Cluster.ClusterJobs.Runs(job)) { throw new SluiceException($"models --cluster: {Cluster.ClusterJobs.Refusal(job)}"); }
        if (Cluster.ClusterJobs.UsesSharedLake(job) && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.FolderVariable)))
        {
            throw new SluiceException($"models --cluster: {definition.FullName} runs on the embedded (duckdb) warehouse or reads lake tables, which are the cluster's shared lake only in a folder every worker sees: set {Core.Metadata.SharedMetadata.FolderVariable} (docs/SCALING.md, \"Jobs\")");
        }

        if (partial is not null)
        {
            throw new SluiceException($"{partial} --cluster: a partial run would write {definition.FullName}'s tables outside the job's lease, beside a worker's run; run the whole job (models run {definition.Recipe} --cluster), which takes the lease as the workers' runs do");
        }
    }

    private static (JobDefinition Definition, ModelsJobFactory Factory) Find(string recipeName, string? job, string? engine)
    {
        var recipe = CliContext.LoadRecipe(recipeName);
        var jobs = recipe.Jobs.Where(j => j.Factory is ModelsJobFactory).ToList();
        var definition = job is not null
            ? jobs.FirstOrDefault(j => j.Name == job) ?? throw new SluiceException($"recipe '{recipe.Name}' has no models job '{job}' (models jobs: {string.Join(", ", jobs.Select(j => j.Name))}).")
            : jobs.Count == 1 ? jobs[0]
            : throw new SluiceException(jobs.Count == 0 ? $"recipe '{recipe.Name}' has no job of type models." : $"recipe '{recipe.Name}' has several models jobs ({string.Join(", ", jobs.Select(j => j.Name))}); pick one with --job.");
        WarehouseEngine? chosen = null;
        if (engine is not null)
        {
            chosen = ModelsOptions.ParseEngine(engine) ?? throw new SluiceException($"--engine '{engine}': expected duckdb or postgres.");
        }

        var factory = ((ModelsJobFactory)definition.Factory).With(chosen);
        return (definition, factory);
    }
}
