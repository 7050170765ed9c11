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
        command.Subcommands.Add(Reminders());
        return command;
    }

    private static Command Reminders()
    {
        var cases = new Option<int>("--cases") { Description = "Cases to generate (about three events each)", DefaultValueFactory = _ => 1_000_000 };
        var command = new Command("reminders", "repeat-reminder: normalisation rate, and rule evaluation with 10,000 reminders due among a million cases") { cases };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "reminders");
            var report = await RemindersBenchmark.RunAsync(root, result.GetValue(cases), Console.Out, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
