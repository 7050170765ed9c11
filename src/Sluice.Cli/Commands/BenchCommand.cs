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
        return command;
    }
}
