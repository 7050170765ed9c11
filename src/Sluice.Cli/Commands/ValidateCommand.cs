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
        var recipe = new Argument<string>("recipe") { Description = "Recipe folder name under recipes/, or a path" };
        var command = new Command("validate", "Check a recipe's configuration: exit 0 when valid, else one line per problem (file:line: key: what is wrong)") { recipe };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (loaded, errors) = new RecipeLoader(Components.Create()).TryLoad(result.GetValue(recipe)!);
            if (errors.Any)
            {
                foreach (var e in errors.All)
                {
                    await Console.Out.WriteLineAsync(e.ToString()).ConfigureAwait(false);
                }

                return 1;
            }

            var bound = await BindModelsAsync(loaded!, result, errors, ct).ConfigureAwait(false);
            if (errors.Any)
            {
                foreach (var e in errors.All) { await Console.Out.WriteLineAsync(e.ToString()).ConfigureAwait(false); }
                return 1;
            }

            await Console.Error.WriteLineAsync($"{loaded!.Name}: valid ({loaded.Pipelines.Count} pipeline(s), {loaded.Jobs.Count} job(s){bound})").ConfigureAwait(false);
            return 0;
        }));
        return command;
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
