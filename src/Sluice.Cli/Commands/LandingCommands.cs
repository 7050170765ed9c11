using System.CommandLine;
using Microsoft.Extensions.Logging;
using Sluice.Connectors.Http.Ingest;
using Sluice.Hosting;
using Sluice.Core.Pipeline;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice landing repair</c>: the way out of a damaged landing log (the HTTP streams' durable log).</summary>
internal static class LandingCommands
{
    public static Command Create()
    {
        var command = new Command("landing", "The landing logs of a recipe's HTTP streams");
        command.Subcommands.Add(Repair());
        return command;
    }

    private static Command Repair()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe folder name under recipes/, or a path to a recipe folder" };
        var command = new Command("repair",
            "Make a damaged landing log usable again, with the recipe stopped: unreadable bytes become padding (every whole record keeps its offset), " +
            "each damaged segment is first copied to landing/<stream>/damaged/, and every range given up goes to the dead-letter store") { recipe };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var definition = CliContext.LoadRecipe(result.GetValue(recipe)!);
            using var services = CliContext.Services(result, LogLevel.Information);
            using var runLock = CliContext.TakeRunLock(services, definition.Name);
            var host = new RecipeHost(definition, services);
            await using (host.ConfigureAwait(false))
            {
                foreach (var pipeline in host.Sources.OfType<StreamPipeline>())
                {
                    if (pipeline.Source is not HttpIngestSource source) { continue; }
                    var dropped = source.Repair(pipeline.SinkCheckpoints);
                    var bytes = dropped.Sum(d => d.To - d.From);
                    await Console.Out.WriteLineAsync(dropped.Count == 0
                        ? $"{source.Options.Stream}: the landing log needs no repair"
                        : $"{source.Options.Stream}: gave up {dropped.Count} range(s), {bytes} bytes (see ./sluice dlq list; copies in {Path.Combine(source.Log.Folder, LandingLogRepair.KeptFolder)})").ConfigureAwait(false);
                }
            }

            return 0;
        }));
        return command;
    }
}
