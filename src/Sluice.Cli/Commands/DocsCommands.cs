using System.CommandLine;
using Sluice.Reference;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice docs reference</c>: writes the options reference pages (docs/reference/) from the components' declarations.</summary>
internal static class DocsCommands
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder the pages are written to", DefaultValueFactory = _ => Path.Combine("docs", "reference") };
        var reference = new Command("reference", "Write the reference of every source, step, sink, job and file-type option (key, type, default, unit, allowed values, description)") { output };
        reference.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var folder = result.GetValue(output)!;
            Directory.CreateDirectory(folder);
            var pages = ReferencePages.Generate(Sluice.Recipes.RecipeComponents.Create());
            foreach (var (file, text) in pages)
            {
                await File.WriteAllTextAsync(Path.Combine(folder, file), text, ct).ConfigureAwait(false);
            }

            await Console.Error.WriteLineAsync($"wrote {pages.Count} pages to {folder}").ConfigureAwait(false);
            return 0;
        }));
        return new Command("docs", "Documentation made from the code") { reference };
    }
}
