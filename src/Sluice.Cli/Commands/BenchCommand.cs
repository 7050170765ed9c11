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
        command.Subcommands.Add(Cdc());
        return command;
    }

    private static Command Cdc()
    {
        var seconds = new Option<double>("--seconds") { Description = "Length of each phase (reference, throughput, latency)", DefaultValueFactory = _ => 20 };
        var rate = new Option<double>("--latency-rate") { Description = "Insert rate while measuring commit-to-Redis latency", DefaultValueFactory = _ => 1000 };
        var cdc = new Command("cdc", "engagement-cdc: sustained insert rate vs the same generator without Sluice, lag, and commit-to-Redis latency (needs PG*, REDIS_URL, CLICKHOUSE_URL)") { seconds, rate };
        cdc.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "cdc");
            var report = await CdcBenchmark.RunAsync(root, result.GetValue(seconds), result.GetValue(rate), Console.Out, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return cdc;
    }
}
