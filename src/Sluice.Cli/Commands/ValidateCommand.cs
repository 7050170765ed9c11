using Sluice.Recipes;
using System.CommandLine;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Models;

namespace Sluice.Cli.Commands;

internal static class ValidateCommand
{
    public static Command Create()
    {
        var recipes = new Argument<string[]>("recipe")
        {
            Description = "Recipe folder names under recipes/, or paths; several are also checked against each other (two recipes' models may not build one table)",
            Arity = ArgumentArity.OneOrMore,
        };
        var connect = new Option<bool>("--connect")
        {
            Description = "Also ask every configured server (Postgres, ClickHouse, Redis, HTTP APIs): does it answer, are the source tables, columns, slot, publication and rights there",
        };
        var cluster = new Option<bool>("--cluster")
        {
            Description = "Check the recipes as run --cluster runs them: with the columns cluster mode adds to rows (_offset of a files or pull pipeline with a lake sink) and what cluster mode cannot run (docs/SCALING.md)",
        };
        var command = new Command("validate", "Check recipes' configuration: exit 0 when valid, else one line per problem (file:line: key: what is wrong)") { recipes, connect, cluster };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var valid = new List<Recipe>();
            var failed = false;
            foreach (var name in result.GetValue(recipes)!)
            {
                var (loaded, errors) = new RecipeLoader(RecipeComponents.Create()) { Cluster = result.GetValue(cluster) }.TryLoad(name);
                var bound = errors.Any ? "" : await BindModelsAsync(loaded!, result, errors, ct).ConfigureAwait(false);
                if (errors.Any)
                {
                    foreach (var e in errors.All) { await Console.Out.WriteLineAsync(e.ToString()).ConfigureAwait(false); }
                    failed = true;
                    continue;
                }

                if (result.GetValue(cluster) && Sluice.Cluster.ClusterRecipeCheck.Problems(loaded!) is { Count: > 0 } refused)
                {
                    foreach (var problem in refused) { await Console.Out.WriteLineAsync("--cluster: " + problem).ConfigureAwait(false); }
                    failed = true;
                    continue;
                }

                valid.Add(loaded!);
                if (result.GetValue(connect))
                {
                    var (checkedCount, problems) = await ConnectionChecks.RunAsync(loaded!, ct).ConfigureAwait(false);
                    foreach (var problem in problems) { await Console.Out.WriteLineAsync(problem).ConfigureAwait(false); }
                    if (problems.Count > 0)
                    {
                        failed = true;
                        continue;
                    }

                    bound += $"; {checkedCount} component(s) checked against their servers";
                }

                await Console.Error.WriteLineAsync($"{loaded!.Name}: valid ({loaded.Pipelines.Count} pipeline(s), {loaded.Jobs.Count} job(s){bound})").ConfigureAwait(false);
                foreach (var pipeline in loaded.Pipelines.Where(p => p.Unchecked is not null && !(result.GetValue(connect) && p.Source is Core.Pipeline.IConnectedBatchTables)))
                {
                    await Console.Error.WriteLineAsync($"{loaded.Name}: pipeline '{pipeline.Name}': not every column checked: {pipeline.Unchecked}").ConfigureAwait(false);
                }
            }

            foreach (var clash in TableClashes(valid, result))
            {
                await Console.Out.WriteLineAsync(clash).ConfigureAwait(false);
                failed = true;
            }

            return failed ? 1 : 0;
        }));
        return command;
    }

    /// <summary>
    /// Model tables two of the recipes' models jobs would both build, and (on the embedded warehouse) tables the data
    /// folder already gives to another job: <see cref="ModelTableClaims"/> refuses these at run time, validate says so first.
    /// </summary>
    private static List<string> TableClashes(List<Recipe> recipes, ParseResult result)
    {
        var jobs = recipes.SelectMany(r => r.Jobs.Select(j => j.Factory).OfType<ModelsJobFactory>()).ToList();
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        var data = CliContext.Folder(result);
        if (File.Exists(data.MetadataPath) && jobs.Any(j => j.Options.EffectiveEngine(j.EngineOverride) == WarehouseEngine.DuckDb))
        {
            using var services = CliContext.ExistingServices(result);
            foreach (var (table, scope) in ModelTableClaims.LakeOwners(services.Metadata)) { owners[table] = scope; }
        }

        var clashes = new List<string>();
        foreach (var job in jobs)
        {
            var conflicts = ModelTableClaims.Conflicts(job.Options.Project, job.Scope, owners);
            if (conflicts.Count > 0)
            {
                clashes.Add(ModelTableClaims.Describe(job.Scope, conflicts, recipes.Count > 1 ? $"the recipes validated together (or the data folder {data.Root})" : $"the data folder {data.Root}"));
            }

            foreach (var m in job.Options.Project.Models) { owners.TryAdd(m.Name, job.Scope); }
        }

        return clashes;
    }

    /// <summary>Compiles every models job's SQL on its engine (<see cref="ModelBinder"/>); what was bound, for the summary.</summary>
    private static async Task<string> BindModelsAsync(Recipe recipe, ParseResult result, ConfigErrors errors, CancellationToken ct)
    {
        var summary = "";
        foreach (var factory in recipe.Jobs.Select(j => j.Factory).OfType<ModelsJobFactory>())
        {
            var project = factory.Options.Project;
            var engine = factory.Options.EffectiveEngine(factory.EngineOverride);
            var postgres = engine == WarehouseEngine.Postgres;
            // Sources the lake has already seen are bound with their columns; validate never creates a data folder.
            var data = CliContext.Folder(result);
            IReadOnlyDictionary<string, IReadOnlyList<(string Name, string Type)>> sources = new Dictionary<string, IReadOnlyList<(string Name, string Type)>>();
            if (Directory.Exists(data.Root) && project.Sources.Count > 0)
            {
                using var services = CliContext.ExistingServices(result);
                sources = ModelBinder.LakeSources(services.Lake, project, postgres);
            }

            int bound;
            if (postgres)
            {
                var settings = factory.Postgres ?? PostgresConnectionOptions.FromEnvironment().WithDatabase(factory.Options.Database).Builder();
                bound = await ModelBinder.BindPostgresAsync(project, sources, settings, errors, ct).ConfigureAwait(false);
            }
            else
            {
                var temp = Path.Combine(Path.GetTempPath(), $"sluice-validate-{Guid.NewGuid():N}");
                try { bound = ModelBinder.BindDuckDb(project, sources, temp, errors); }
                finally { if (Directory.Exists(temp)) { Directory.Delete(temp, recursive: true); } }
            }

            summary += $"; {factory.Job}: {bound} SQL model(s) compiled on {(postgres ? "postgres" : "duckdb")}";
        }

        return summary;
    }
}
