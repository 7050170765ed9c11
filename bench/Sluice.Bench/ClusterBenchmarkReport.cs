using System.Globalization;
using System.Text;

namespace Sluice.Bench;

/// <summary>Latency percentiles of <paramref name="Count"/> samples, in milliseconds.</summary>
public sealed record Percentiles(int Count, double P50Ms, double P99Ms)
{
    public static Percentiles Of(List<double> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var sorted = samples.Order().ToArray();
        return new Percentiles(sorted.Length, IngestLoadGenerator.Percentile(sorted, 0.5), IngestLoadGenerator.Percentile(sorted, 0.99));
    }
}

/// <summary>Rows written (inserted, updated, deleted) per table of the cluster's metadata schema over <paramref name="Seconds"/>.</summary>
public sealed record MetadataWrites(double Seconds, IReadOnlyDictionary<string, long> ByTable)
{
    public long Total => ByTable.Values.Sum();

    public double PerSecond => Seconds <= 0 ? 0 : Total / Seconds;

    public MetadataWrites Minus(MetadataWrites before, double seconds)
    {
        ArgumentNullException.ThrowIfNull(before);
        return new MetadataWrites(seconds, ByTable
            .Select(t => (t.Key, Value: t.Value - before.ByTable.GetValueOrDefault(t.Key)))
            .Where(t => t.Value > 0)
            .ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal));
    }

    /// <summary>The busiest tables, writes per second per worker.</summary>
    public string Describe(int workers) => Total == 0 ? "none" : string.Join(", ", ByTable.OrderByDescending(t => t.Value)
        .Select(t => $"{t.Key} {(t.Value / Seconds / workers).ToString("0.0", CultureInfo.InvariantCulture)}/s"));
}

/// <summary>One mode under the paced load of the cost window.</summary>
public sealed record CostResult(
    string Mode, int Workers, long Events, double WindowSeconds, double SluiceCpuSeconds, double NatsCpuSeconds,
    Percentiles EndToEnd, Percentiles ProbeAck, Percentiles BatchAck, MetadataWrites? Metadata, double LoadMin, double LoadMax)
{
    public double SluiceUsPerEvent => SluiceCpuSeconds * 1e6 / Events;

    public double NatsUsPerEvent => NatsCpuSeconds * 1e6 / Events;
}

/// <summary>One throughput phase: <paramref name="Workers"/> workers held to <paramref name="Share"/> CPU each.</summary>
public sealed record ThroughputResult(
    int Workers, double Share, double WindowSeconds, long Landed, double AcceptedPerSecond, IReadOnlyList<double> WorkerCpuSeconds,
    double NatsCpuSeconds, MetadataWrites Metadata, double LoadMin, double LoadMax)
{
    public double LandedPerSecond => Landed / WindowSeconds;

    public double SluiceUsPerEvent => Landed == 0 ? 0 : WorkerCpuSeconds.Sum() * 1e6 / Landed;

    public double NatsUsPerEvent => Landed == 0 ? 0 : NatsCpuSeconds * 1e6 / Landed;

    /// <summary>The workers' <c>SLUICE_CLUSTER_MAX_PENDING</c> (messages).</summary>
    public int MaxPending { get; init; }

    /// <summary>Messages in JetStream not yet processed at the window's start and end (-1: unknown).</summary>
    public long BacklogStart { get; init; } = -1;

    public long BacklogEnd { get; init; } = -1;

    /// <summary>Requests answered 429/503 over the load (warm-up and window).</summary>
    public long Refused { get; init; }

    /// <summary>
    /// The rate is what the workers sustain only when the backlog stayed bounded: at the window's end within the bound
    /// (a quarter over it for the 2 s the workers' figure may lag), so what they accepted and did not process in the window
    /// is at most one bound's worth. Past it the workers were accepting more than the bound lets them (none set, or it
    /// does not work), and the rate is not steady.
    /// </summary>
    public bool Steady => BacklogStart >= 0 && BacklogEnd >= 0 && BacklogEnd <= MaxPending * 5L / 4;
}

public sealed record ClusterBenchmarkReport(
    string Machine, DateTime Finished, ClusterBenchmarkOptions Options, IReadOnlyList<CostResult> Costs, IReadOnlyList<ThroughputResult> Scaling, string Quota)
{
    public const double CostTarget = 2.0;
    public const double ScalingTarget = 2.5;

    /// <summary>A cluster mode's Sluice CPU per event over the single process's.</summary>
    public double CostRatio(CostResult cluster) => cluster.SluiceUsPerEvent / Costs[0].SluiceUsPerEvent;

    public double Ratio(ThroughputResult phase) => Scaling[0].LandedPerSecond <= 0 ? 0 : phase.LandedPerSecond / Scaling[0].LandedPerSecond;

    public string ToMarkdown()
    {
        static string N(double v, string f = "N0") => v.ToString(f, CultureInfo.InvariantCulture);
        static string Verdict(bool met) => met ? "met" : "MISS";
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench cluster ({Finished:yyyy-MM-dd HH:mm} UTC)");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Recipe: tenant-analytics with a keyed postgres sink; the cluster on the benchmark's own 3-node JetStream cluster (R3) and a shared metadata store in PostgreSQL. Load: `sluice bench ingest-loadgen` processes (one per server), batches of {100}.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Cost: {N(Options.Events)} events at {N(Options.Rate)} events/s to each mode, after {N(Options.WarmUpSeconds)} s of warm-up; CPU (utime+stime from /proc) from the window's start until every event is in PostgreSQL.");
        sb.AppendLine();
        sb.AppendLine("| mode | events | Sluice CPU/event | NATS CPU/event (apart) | end to end p50 / p99 | ack p50 / p99, single events | ack p50 / p99, batches of 100 | metadata writes/s per worker | load avg |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var c in Costs)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {c.Mode} | {N(c.Events)} | {N(c.SluiceUsPerEvent, "N1")} us | {(c.Workers == 0 ? "-" : N(c.NatsUsPerEvent, "N1") + " us")} | {N(c.EndToEnd.P50Ms, "N1")} / {N(c.EndToEnd.P99Ms, "N1")} ms ({c.EndToEnd.Count} probes) | {N(c.ProbeAck.P50Ms, "N1")} / {N(c.ProbeAck.P99Ms, "N1")} ms | {N(c.BatchAck.P50Ms, "N1")} / {N(c.BatchAck.P99Ms, "N1")} ms | {(c.Metadata is { } m ? N(m.PerSecond / c.Workers, "N1") : "-")} | {N(c.LoadMin, "N1")}-{N(c.LoadMax, "N1")} |");
        }

        sb.AppendLine();
        foreach (var c in Costs.Skip(1))
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"Sluice CPU/event, {c.Mode} over single process: **{N(CostRatio(c), "N2")}x** (target <= {N(CostTarget, "N1")}x: {Verdict(CostRatio(c) <= CostTarget)}); with NATS's CPU added: {N((c.SluiceUsPerEvent + c.NatsUsPerEvent) / Costs[0].SluiceUsPerEvent, "N2")}x. Metadata store writes per worker: {c.Metadata?.Describe(c.Workers)}.");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Throughput: each worker held to {(Options.Share > 0 ? N(Options.Share, "0.##") + " CPU" : "no quota")} ({Quota}), {Options.Concurrency} requests in flight per worker, {N(Options.Seconds)} s measured after {N(Options.WarmUpSeconds)} s; rate = rows landed in PostgreSQL over the window. The load generators honour Retry-After; past max_pending messages not yet processed (per worker {N(Options.MaxPendingPerWorker)}) the workers refuse with 503, so what they accept is what they process. A ratio counts only where the backlog stayed within the bound (steady).");
        sb.AppendLine();
        sb.AppendLine("| workers | landed events/s | ratio to 1 worker | accepted events/s | backlog at start / end (messages; max) | requests refused | CPU used per worker (cores) | Sluice CPU/event | NATS CPU/event | metadata writes/s per worker | load avg |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var t in Scaling)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {t.Workers} | {N(t.LandedPerSecond)} | {N(Ratio(t), "N2")}x{(t.Steady ? "" : " (not steady)")} | {N(t.AcceptedPerSecond)} | {N(t.BacklogStart)} / {N(t.BacklogEnd)} ({N(t.MaxPending)}) | {N(t.Refused)} | {string.Join(", ", t.WorkerCpuSeconds.Select(c => N(c / t.WindowSeconds, "N2")))} | {N(t.SluiceUsPerEvent, "N1")} us | {N(t.NatsUsPerEvent, "N1")} us | {N(t.Metadata.PerSecond / t.Workers, "N1")} | {N(t.LoadMin, "N1")}-{N(t.LoadMax, "N1")} |");
        }

        var last = Scaling[^1];
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{last.Workers} workers over 1: **{N(Ratio(last), "N2")}x**{(last.Workers == 3 ? $" (target >= {N(ScalingTarget, "N1")}x: {(Scaling[0].Steady && last.Steady ? Verdict(Ratio(last) >= ScalingTarget) : "not valid, a backlog past its bound")})" : "")}. Metadata writes per worker, {last.Workers} workers: {last.Metadata.Describe(last.Workers)}.");
        return sb.ToString();
    }
}
