using System.CommandLine;
using Microsoft.Extensions.Logging;
using Sluice.Testing;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice test &lt;recipe&gt;</c>: runs the recipe's fixtures end to end and compares its outputs with the expected rows (docs/TESTING.md).</summary>
internal static class TestCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe folder name under recipes/, or a path to a recipe folder" };
        var only = new Option<string?>("--case") { Description = "Run only this case (a folder under the recipe's tests/)" };
        var servers = new Option<bool>("--servers") { Description = "Also run every case with the recipe's models on PostgreSQL (PG* variables), in a database of its own" };
        var keep = new Option<bool>("--keep") { Description = "Keep each case's data folder and print where it is" };
        var command = new Command("test", "Run a recipe's fixtures (recipes/<r>/tests/<case>/case.yaml) end to end; exit 0 when every output holds its expected rows") { recipe, only, servers, keep };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            // Recipes under test reject rows on purpose: their warnings are what the expectations check, not news.
            var run = new RecipeTestRun(Sluice.Recipes.RecipeComponents.Create(), data => CliContext.Services(result, data, LogLevel.Error), Console.Out)
            {
                Servers = result.GetValue(servers),
                Keep = result.GetValue(keep),
            };
            var failed = await run.RunAsync(result.GetValue(recipe)!, result.GetValue(only), ct).ConfigureAwait(false);
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }
}
