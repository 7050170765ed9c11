using System.CommandLine;
using Sluice.Connectors.Files;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

internal static class FileTypesCommands
{
    public static Command Create()
    {
        var command = new Command("filetypes", "The file-type catalog: which files a drop folder accepts, and how they are read");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Remove());
        return command;
    }

    private static Command List()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name" };
        var format = CliOutput.FormatOption();
        var command = new Command("list", "List the file types of a recipe") { recipe, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var loaded = CliContext.LoadRecipe(result.GetValue(recipe)!);
            using var services = CliContext.Services(result);
            var catalog = new FileTypeCatalog(services.Metadata, services.Time);
            var shipped = loaded.Pipelines.Select(p => p.Source).OfType<FilesSourceFactory>().SelectMany(f => f.ShippedTypes).ToList();
            catalog.SyncRecipeTypes(loaded.Name, shipped);
            var rows = catalog.All(loaded.Name).Select(t => new object?[]
            {
                t.Name, t.Pattern, t.Format.ToString().ToLowerInvariant(), t.Table, t.EventTime, t.OnInvalid == InvalidRowPolicy.RejectFile ? "reject_file" : "quarantine_rows",
                string.Join(", ", t.Fields.Select(f => $"{f.Name}:{f.Type.ToString().ToLowerInvariant()}{(f.Required ? "" : "?")}")), t.Origin,
            }).ToList();
            await CliOutput.WriteAsync(result, new QueryResult(["name", "pattern", "format", "table", "event_time", "on_invalid", "fields", "origin"], rows), result.GetValue(format)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Add()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name" };
        var file = new Argument<string>("file") { Description = "A file-type YAML (same keys as the recipe's filetypes/*.yaml)" };
        var command = new Command("add", "Add or replace a file type; a running instance picks it up at its next look at the drop folder") { recipe, file };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var loaded = CliContext.LoadRecipe(result.GetValue(recipe)!);
            var path = result.GetValue(file)!;
            if (!File.Exists(path))
            {
                throw new SluiceException($"file type definition '{path}' not found.");
            }

            var errors = new ConfigErrors();
            var type = FileTypeParser.ParseFile(path, errors);
            errors.ThrowIfAny();
            using var services = CliContext.Services(result);
            new FileTypeCatalog(services.Metadata, services.Time).Add(loaded.Name, type!);
            services.Lake.Register(type!.LakeTable());
            await Console.Out.WriteLineAsync($"{loaded.Name}: file type '{type.Name}' ({type.Pattern} -> {type.Table}) added").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Remove()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe name" };
        var name = new Argument<string>("name") { Description = "File type name" };
        var command = new Command("remove", "Remove a file type added with 'filetypes add' (a shipped one comes back at the next start)") { recipe, name };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var loaded = CliContext.LoadRecipe(result.GetValue(recipe)!);
            using var services = CliContext.Services(result);
            if (!new FileTypeCatalog(services.Metadata, services.Time).Remove(loaded.Name, result.GetValue(name)!))
            {
                throw new SluiceException($"{loaded.Name} has no file type '{result.GetValue(name)}'.");
            }

            await Console.Out.WriteLineAsync("removed").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
