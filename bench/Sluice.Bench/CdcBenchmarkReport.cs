using System.Globalization;
using System.Text;

namespace Sluice.Bench;

/// <summary>Commit-to-Redis times of the probe inserts, in milliseconds.</summary>
public sealed record Latency(int Probes, double P50Ms, double P99Ms, double MaxMs)
{
    public const double TargetP99Ms = 500;

    public bool Met => P99Ms < TargetP99Ms;
}

/// <summary>
/// One pipeline's window: from a moment in the steady stream until every change inserted by the end of the inserts is in
/// every sink. CPU of Sluice and of the WAL sender serving its slot over the same seconds, each divided by the changes
/// Sluice delivered in the window (those inserted in it and the lag at its start). The WAL sender had decoded part of
/// that lag before the window, so its CPU per change is if anything understated and the ratio errs against Sluice.
/// </summary>
public sealed record CdcScenarioResult(
    string Pipeline, string Sinks, double TargetRatio, double WindowSeconds, long Inserted, long Delivered, long LagAtStart, double RowsPerTransaction,
    long WalBytes, double SluiceCpuSeconds, double WalSenderCpuSeconds, double LoadMin, double LoadMax, Latency? Latency)
{
    /// <summary>Sluice's CPU per change it delivered, in microseconds.</summary>
    public double SluiceUsPerChange => SluiceCpuSeconds * 1e6 / Math.Max(1, Delivered);

    /// <summary>The WAL sender's CPU per change (the same changes), in microseconds.</summary>
    public double WalSenderUsPerChange => WalSenderCpuSeconds * 1e6 / Math.Max(1, Delivered);

    public double Ratio => SluiceUsPerChange / WalSenderUsPerChange;

    public bool Met => Ratio <= TargetRatio;
}

public sealed record CdcBenchmarkReport(string Machine, DateTime At, CdcBenchmarkOptions Options, IReadOnlyList<CdcScenarioResult> Pipelines)
{
    public static string Verdict(bool met) => met ? "PASS" : "MISS";

    public string Setup =>
        string.Create(CultureInfo.InvariantCulture, $"Inserts: `sluice generate engagement-cdc --rate {Options.Rate:0}` (a separate process; each INSERT statement is one transaction of the rows due since the last), {Options.WarmUpSeconds:0} s of unmeasured streaming, then a window per pipeline of {Options.Seconds:0} s of inserts and the time until every sink has them all. ") +
            "Sluice is `sluice run` in its own process; CPU is utime+stime from /proc/<pid>/stat over the window, for Sluice and for the Postgres WAL sender serving its slot; " +
            "both divided by the changes Sluice delivered to every sink in the window. Postgres, ClickHouse, Redis and the mock API (in the benchmark's process) on the same machine.";

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench cdc ({At:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(Setup);
        sb.AppendLine();
        sb.AppendLine("| pipeline | changes delivered in the window (lag at its start; rows per transaction; server WAL) | Sluice CPU per change | WAL sender CPU per change (reference, same run) | ratio | target | | load average (1 min) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var p in Pipelines)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {p.Pipeline}: {p.Sinks} | {p.Delivered:N0} in {p.WindowSeconds:N1} s ({p.LagAtStart:N0}; {p.RowsPerTransaction:N1}; {p.WalBytes / 1048576.0:N1} MiB) | {p.SluiceUsPerChange:N1} us ({p.SluiceCpuSeconds:N2} s) | {p.WalSenderUsPerChange:N1} us ({p.WalSenderCpuSeconds:N2} s) | {p.Ratio:N2}x | <= {p.TargetRatio:N2}x | **{Verdict(p.Met)}** | {p.LoadMin:N1}-{p.LoadMax:N1} |");
        }

        foreach (var p in Pipelines.Where(p => p.Latency is not null))
        {
            var l = p.Latency!;
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"Commit -> visible in Redis at {Options.Rate:N0} inserts/s ({p.Pipeline}, {l.Probes} probes, each 50-150 ms after the last arrived, in the window): p50 {l.P50Ms:N0} ms, p99 {l.P99Ms:N0} ms, max {l.MaxMs:N0} ms; target p99 < {Latency.TargetP99Ms:N0} ms: **{Verdict(l.Met)}**.");
        }

        return sb.ToString();
    }
}
