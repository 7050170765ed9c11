using System.CommandLine;
using Sluice.Core.Recipes;
using Sluice.Templates;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice init &lt;name&gt; --from &lt;template&gt;</c>: a new recipe with fixtures, ready for <c>validate</c> and <c>test</c>.</summary>
internal static class InitCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "The new recipe's name (lower-case letters, digits and '-')" };
        var from = new Option<string>("--from") { Description = $"The template: {string.Join(", ", RecipeTemplates.Names)}", Required = true };
        from.AcceptOnlyFromAmong([.. RecipeTemplates.Names]);
        var dir = new Option<string?>("--dir") { Description = "The folder to write the recipe's folder into (default: the recipes folder, $SLUICE_RECIPES or ./recipes)" };
        var command = new Command("init", "Write a new runnable recipe with fixtures from a template") { name, from, dir };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (folder, files) = RecipeTemplates.Write(result.GetValue(from)!, result.GetValue(name)!, result.GetValue(dir) ?? RecipeLoader.RecipesRoot);
            var shown = Path.GetRelativePath(Directory.GetCurrentDirectory(), folder) is var r && !r.StartsWith("..", StringComparison.Ordinal) ? r : folder;
            await Console.Out.WriteLineAsync($"wrote {shown} ({files} files, fixtures in {Path.Combine(shown, "tests")}); next: ./sluice validate {shown} && ./sluice test {shown}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
