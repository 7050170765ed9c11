using System.CommandLine;
using Sluice.Core.Recipes;

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

            await Console.Error.WriteLineAsync($"{loaded!.Name}: valid ({loaded.Pipelines.Count} pipeline(s), {loaded.Jobs.Count} job(s))").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
