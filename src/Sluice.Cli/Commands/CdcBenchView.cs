using System.Globalization;
using Sluice.Bench;
using Spectre.Console;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice bench cdc</c> on a terminal: a progress bar per pipeline while it runs, then the results as a table.</summary>
internal static class CdcBenchView
{
    public static async Task<CdcBenchmarkReport> RunAsync(string root, CdcBenchmarkOptions options, CancellationToken ct)
    {
        if (!CliProgress.Terminal)
        {
            // A log or CI: one line per status change, not a redrawn bar.
            string? last = null;
            var lines = new SynchronousProgress<CdcBenchProgress>(p =>
            {
                var phase = p.Pipeline + p.Status.Split(':')[0];
                if (phase != last) { CliProgress.Lines.WriteLine($"{p.Pipeline}: {p.Done:0}/{p.Total:0} s {p.Status}"); }
                last = phase;
            });
            return await CdcBenchmark.RunAsync(root, options, lines, ct).ConfigureAwait(false);
        }

        return await CliProgress.Bar()
            .StartAsync(async context =>
            {
                var tasks = new Dictionary<string, ProgressTask>(StringComparer.Ordinal);
                var progress = new SynchronousProgress<CdcBenchProgress>(p =>
                {
                    if (!tasks.TryGetValue(p.Pipeline, out var task))
                    {
                        task = tasks[p.Pipeline] = context.AddTask(p.Pipeline);
                    }

                    task.MaxValue = p.Total;
                    task.Value = p.Done;
                    task.Description = Markup.Escape($"{p.Pipeline}: {p.Status}");
                });
                var report = await CdcBenchmark.RunAsync(root, options, progress, ct).ConfigureAwait(false);
                foreach (var task in tasks.Values) { task.StopTask(); }
                return report;
            }).ConfigureAwait(false);
    }

    public static void Show(CdcBenchmarkReport report)
    {
        static string N(double v, string format = "N1") => v.ToString(format, CultureInfo.InvariantCulture);
        static string Verdict(bool met) => met ? "[green]PASS[/]" : "[red]MISS[/]";
        var table = new Table().Title($"bench cdc at {N(report.Options.Rate, "N0")} inserts/s, {N(report.Options.Seconds, "N0")} s per pipeline")
            .AddColumns("pipeline", "changes", "rows/tx", "Sluice CPU/change", "WAL sender CPU/change", "ratio", "target", "", "load avg");
        foreach (var p in report.Pipelines)
        {
            table.AddRow(
                Markup.Escape(p.Pipeline), N(p.Delivered, "N0"), N(p.RowsPerTransaction),
                $"{N(p.SluiceUsPerChange)} us ({N(p.SluiceCpuSeconds, "N2")} s)", $"{N(p.WalSenderUsPerChange)} us ({N(p.WalSenderCpuSeconds, "N2")} s)",
                $"{N(p.Ratio, "N2")}x", $"<= {N(p.TargetRatio, "N2")}x", Verdict(p.Met), $"{N(p.LoadMin)}-{N(p.LoadMax)}");
        }

        foreach (var p in report.Pipelines.Where(p => p.Latency is not null))
        {
            var l = p.Latency!;
            table.AddRow(
                Markup.Escape($"commit -> Redis, {p.Pipeline}"), $"{l.Probes} probes", "",
                $"p50 {N(l.P50Ms, "N0")} ms, p99 {N(l.P99Ms, "N0")} ms", $"max {N(l.MaxMs, "N0")} ms", "", $"p99 < {N(Latency.TargetP99Ms, "N0")} ms", Verdict(l.Met), "");
        }

        AnsiConsole.Write(table);
        foreach (var p in report.Pipelines) { AnsiConsole.MarkupLine(Markup.Escape($"{p.Pipeline}: {p.Sinks}; window {N(p.WindowSeconds)} s, lag at its start {N(p.LagAtStart, "N0")}, server WAL {N(p.WalBytes / 1048576.0)} MiB")); }
        AnsiConsole.MarkupLine(Markup.Escape($"Machine: {report.Machine}"));
    }
}
