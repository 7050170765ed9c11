using System.CommandLine;
using Sluice.Bench;

namespace Sluice.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks, each measured against a reference in the same run (see docs/BENCHMARKS.md)");
        var events = new Option<int>("--events") { Description = "Vehicle events to generate", DefaultValueFactory = _ => 2_000_000 };
        var files = new Command("files", "File ingest vs DuckDB read_json + COPY, and the daily summary vs plain DuckDB SQL") { events };
        files.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "files");
            var report = await FilesBenchmark.RunAsync(root, result.GetValue(events), Console.Out, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        command.Subcommands.Add(files);
        command.Subcommands.Add(Warehouse());
        return command;
    }

    private static Command Warehouse()
    {
        var customers = new Option<int>("--customers") { Description = "Customers on day 1", DefaultValueFactory = _ => 1_000_000 };
        var sales = new Option<long>("--sales") { Description = "Sales rows over all days", DefaultValueFactory = _ => 10_000_000 };
        var days = new Option<int>("--days") { Description = "Daily files", DefaultValueFactory = _ => 30 };
        var engine = new Option<string>("--engine") { Description = "duckdb, postgres or both", DefaultValueFactory = _ => "both" };
        var memory = new Option<string>("--duckdb-memory") { Description = "DuckDB memory limit for the run", DefaultValueFactory = _ => "1GB" };
        var command = new Command("warehouse", "sales-warehouse load + models per engine, and the last day's SCD2 merge vs the same merge written by hand") { customers, sales, days, engine, memory };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "warehouse");
            var which = result.GetValue(engine)!;
            IReadOnlyList<Models.WarehouseEngine> engines = which == "both" ? [Models.WarehouseEngine.DuckDb, Models.WarehouseEngine.Postgres]
                : [Models.ModelsOptions.ParseEngine(which) ?? throw new Core.SluiceException($"--engine '{which}': expected duckdb, postgres or both.")];
            if (result.GetValue(days) < 2 || result.GetValue(customers) < 1 || result.GetValue(sales) < result.GetValue(days))
            {
                throw new Core.SluiceException("--days must be at least 2, --customers at least 1 and --sales at least --days.");
            }

            var options = new WarehouseBenchmarkOptions { Customers = result.GetValue(customers), Sales = result.GetValue(sales), Days = result.GetValue(days), Engines = engines, DuckDbMemory = result.GetValue(memory)! };
            var report = await WarehouseBenchmark.RunAsync(root, options, Console.Out, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
