using System.CommandLine;
using Sluice.Connectors.Files;
using Sluice.Core;
using Sluice.Generators;

namespace Sluice.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new Command("generate", "Write sample data for a recipe");
        command.Subcommands.Add(VehicleFiles());
        command.Subcommands.Add(SalesWarehouse());
        return command;
    }

    private static Command SalesWarehouse()
    {
        var days = new Option<int>("--days") { Description = "Daily file pairs (customers_YYYYMMDD.csv + sales_YYYYMMDD.csv)", DefaultValueFactory = _ => 3 };
        var customers = new Option<int>("--customers") { Description = "Customers in the first file (later files list new and changed ones)", DefaultValueFactory = _ => 1000 };
        var sales = new Option<int>("--sales-per-day") { Description = "Sales rows per daily file", DefaultValueFactory = _ => 5000 };
        var start = new Option<string?>("--start") { Description = "Date of the first file (YYYY-MM-DD); default --days days before today" };
        var moves = new Option<double>("--move-ratio") { Description = "Share of customers moving city each day (0..1)", DefaultValueFactory = _ => 0.01 };
        var dirty = new Option<double>("--dirty-ratio") { Description = "Share of dirty or invalid rows (0..1)", DefaultValueFactory = _ => 0.01 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var command = new Command("sales-warehouse", "Daily customer and sales CSV exports, with moves, duplicates and dirty values, into the recipe's drop folder") { days, customers, sales, start, moves, dirty, seed };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("sales-warehouse");
            var folder = recipe.Pipelines.Select(p => p.Source).OfType<FilesSourceFactory>().FirstOrDefault()?.Options.Folder ?? recipe.Name;
            var data = new DataDirectory(DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)));
            var incoming = new DropFolder(Path.Combine(data.Root, folder)).Incoming;
            if (result.GetValue(days) < 1 || result.GetValue(customers) < 1 || result.GetValue(sales) < 0)
            {
                throw new SluiceException("--days and --customers must be at least 1, --sales-per-day at least 0.");
            }

            foreach (var (name, value) in new[] { ("--move-ratio", result.GetValue(moves)), ("--dirty-ratio", result.GetValue(dirty)) })
            {
                if (value is < 0 or > 1) { throw new SluiceException($"{name} must be between 0 and 1, got {value}."); }
            }

            DateOnly? first = null;
            if (result.GetValue(start) is { } text)
            {
                first = DateOnly.TryParseExact(text, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var d)
                    ? d : throw new SluiceException($"--start '{text}' is not a date (YYYY-MM-DD).");
            }

            var written = new SalesWarehouseGenerator(incoming, new SalesWarehouseGeneratorOptions
            {
                Days = result.GetValue(days), Customers = result.GetValue(customers), SalesPerDay = result.GetValue(sales), Start = first,
                MoveRatio = result.GetValue(moves), DirtyRatio = result.GetValue(dirty), Seed = result.GetValue(seed),
            }, TimeProvider.System).Write();
            await Console.Out.WriteLineAsync($"wrote {written.Files.Count} files ({written.CustomerRows:N0} customer rows, {written.SalesRows:N0} sales rows, {written.Moves:N0} moves) to {incoming}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command VehicleFiles()
    {
        var files = new Option<int>("--files") { Description = "Files per round (event and status files alternate)", DefaultValueFactory = _ => 10 };
        var events = new Option<int>("--events-per-file") { Description = "Records per file", DefaultValueFactory = _ => 100 };
        var continuous = new Option<bool>("--continuous") { Description = "Keep writing a round every --interval seconds until Ctrl-C" };
        var interval = new Option<double>("--interval") { Description = "Seconds between rounds with --continuous", DefaultValueFactory = _ => 10 };
        var bad = new Option<double>("--bad-ratio") { Description = "Share of files broken on purpose (0..1)", DefaultValueFactory = _ => 0 };
        var late = new Option<double>("--late-ratio") { Description = "Share of events 1-4 days late (0..1)", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var command = new Command("vehicle-files", "Vehicle event and status JSON files into the recipe's drop folder") { files, events, continuous, interval, bad, late, seed };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("vehicle-files");
            var folder = recipe.Pipelines.Select(p => p.Source).OfType<FilesSourceFactory>().FirstOrDefault()?.Options.Folder ?? recipe.Name;
            var data = new DataDirectory(DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)));
            var incoming = new DropFolder(Path.Combine(data.Root, folder)).Incoming;
            foreach (var (name, value) in new[] { ("--bad-ratio", result.GetValue(bad)), ("--late-ratio", result.GetValue(late)) })
            {
                if (value is < 0 or > 1) { throw new SluiceException($"{name} must be between 0 and 1, got {value}."); }
            }

            if (result.GetValue(files) < 1 || result.GetValue(events) < 0)
            {
                throw new SluiceException("--files must be at least 1 and --events-per-file at least 0.");
            }

            var generator = new VehicleFilesGenerator(incoming, new VehicleFilesGeneratorOptions
            {
                Files = result.GetValue(files), EventsPerFile = result.GetValue(events), BadRatio = result.GetValue(bad),
                LateRatio = result.GetValue(late), Seed = result.GetValue(seed),
            }, TimeProvider.System);
            if (!result.GetValue(continuous))
            {
                var written = generator.WriteRound();
                await Console.Out.WriteLineAsync($"wrote {written.Count} files to {incoming}").ConfigureAwait(false);
                return 0;
            }

            await Console.Error.WriteLineAsync($"writing {result.GetValue(files)} files every {result.GetValue(interval)} s to {incoming}; Ctrl-C stops").ConfigureAwait(false);
            await generator.RunContinuousAsync(TimeSpan.FromSeconds(result.GetValue(interval)), w => Console.Out.WriteLine($"wrote {w.Count} files"), ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
