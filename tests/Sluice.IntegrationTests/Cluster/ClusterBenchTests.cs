using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// <c>sluice bench cluster --quick</c>: a few seconds of each phase on the real servers (its own NATS nodes, the
/// services' PostgreSQL). Only that every figure is printed is checked, never a timing: the numbers of a run of seconds
/// on a shared machine mean nothing.
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterBenchTests
{
    [Fact]
    public async Task Bench_cluster_quick_prints_cpu_per_event_and_latencies_per_mode_and_the_rate_of_one_to_three_workers_held_to_a_cpu_share()
    {
        using var data = new TempFolder();
        var env = new Dictionary<string, string>
        {
            ["SLUICE_PROGRESS_SECONDS"] = "0.1", ["PGHOST"] = ServerSettings.PgHost, ["PGPORT"] = ServerSettings.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PGUSER"] = ServerSettings.PgUser, ["PGPASSWORD"] = ServerSettings.PgPassword, ["PGDATABASE"] = ServerSettings.PgDatabase,
        };
        using var bench = SluiceProcess.Start(data.Path, env, "bench", "cluster", "--quick");
        (await bench.WaitAsync(TimeSpan.FromMinutes(10))).ShouldBe(0, bench.Stderr + bench.Stdout);

        const string Number = "[0-9][0-9,.]*";
        const string Latency = $@"{Number} / {Number} ms";
        foreach (var (mode, nats) in new[] { ("single process", "-"), ("cluster, 1 worker", $"{Number} us"), ("cluster, 3 workers", $"{Number} us") })
        {
            // events, Sluice CPU/event, NATS CPU/event, end to end, ack of single events, ack of batches
            bench.Stdout.ShouldMatch($@"\| {mode} \| {Number} \| {Number} us \| {nats} \| {Latency} \({Number} probes\) \| {Latency} \| {Latency} \|");
        }

        bench.Stdout.ShouldMatch($@"Sluice CPU/event, cluster, 1 worker over single process: \*\*{Number}x\*\* \(target <= 2.0x: (met|MISS)\); with NATS's CPU added: {Number}x\. Metadata store writes per worker: ");
        bench.Stdout.ShouldContain("cluster_workers ");
        bench.Stdout.ShouldContain("each worker held to 0.15 CPU (cgroup");
        for (var workers = 1; workers <= 3; workers++)
        {
            // landed/s, ratio (steady or not), accepted/s, backlog at the window's start and end (the bound), requests refused,
            // CPU used by each worker, Sluice and NATS CPU/event, metadata writes/s per worker
            var cpus = string.Join(", ", Enumerable.Repeat(Number, workers));
            bench.Stdout.ShouldMatch($@"\| {workers} \| {Number} \| {Number}x( \(not steady\))? \| {Number} \| -?{Number} / -?{Number} \({Number}\) \| {Number} \| {cpus} \| {Number} us \| {Number} us \| {Number} \|");
        }

        bench.Stdout.ShouldMatch($@"3 workers over 1: \*\*{Number}x\*\* \(target >= 2.5x: (met|MISS|not valid, a backlog past its bound)\)");
        bench.Stderr.ShouldContain("bench cluster: 6/6 (done) 100%");
    }
}
