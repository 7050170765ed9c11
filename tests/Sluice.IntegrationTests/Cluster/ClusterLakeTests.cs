using Npgsql;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Recipes.Generators;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// tenant-analytics as shipped (its sink: the lake) on <c>sluice run --cluster</c> workers sharing one metadata
/// store, one lake folder and the test's own JetStream cluster. The first worker runs alone until it is SIGKILLed (at
/// a crash point) just after the lake committed a batch and before JetStream heard of it, so that batch's events come
/// again to a worker after the ack wait; then a second worker and the dead one started again share the rest while the
/// client goes on sending to both. (Alone, because with two workers on one durable consumer either may take every
/// batch: a CI run saw the doomed one never reach its crash point.) Every event answered 202 is in the shared lake
/// exactly once, read through DuckDB (<c>sluice query --cluster</c>) from a folder no worker uses.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterLakeTests
{
    private const int Requests = 40;
    private const int EventsPerRequest = 250;

    [Fact]
    public async Task Two_workers_with_the_lake_sink_and_one_killed_after_a_commit_land_every_acknowledged_event_once()
    {
        using var temp = new TempFolder("sluice-cluster-lake");
        await using var nats = await NatsTestCluster.StartAsync(temp.Sub("nats"));
        var cluster = "l" + Guid.NewGuid().ToString("N")[..10];
        var env = new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_NATS"] = nats.Urls, ["SLUICE_CLUSTER_ACK_WAIT"] = "5", ["SLUICE_CLUSTER_NAME"] = cluster,
            ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString,
            ["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(temp.Sub("shared")).FullName,
        };
        string token;
        using (var created = SluiceProcess.Start(Directory.CreateDirectory(temp.Sub("admin")).FullName, env, "tokens", "create", "--role", "writer", "--tenant", "acme", "--cluster"))
        {
            (await created.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, created.Stderr);
            token = created.Stdout.Trim().Split('\n')[^1];
        }

        // Worker 0 dies right after its first commit to the lake, before it acknowledges the batch to JetStream.
        var doomed = new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = "lake.sink-committed:1" };
        var workers = new[]
        {
            new ClusterWorker(Directory.CreateDirectory(temp.Sub("worker0")).FullName, FreePort.Next(), token, "tenant-analytics", doomed),
            new ClusterWorker(Directory.CreateDirectory(temp.Sub("worker1")).FullName, FreePort.Next(), token, "tenant-analytics", env),
        };
        var restarted = new ClusterWorker(workers[0].Data, FreePort.Next(), token, "tenant-analytics", env);
        try
        {
            workers[0].Start();
            await workers[0].WaitHealthyAsync();

            var generator = new EcommerceEvents(new Random(24));
            var requests = Enumerable.Range(0, Requests).Select(r =>
            {
                var ids = Enumerable.Range(0, EventsPerRequest).Select(i => $"lk-{r}-{i}").ToList();
                return new PacedRequest(generator.Batch("acme", ids, new DateTime(2025, 11, 8, 6, 0, 0, DateTimeKind.Utc).AddHours(r % 30)), ids);
            }).ToList();
            // Until it dies only worker 0 takes requests; then worker 1 and worker 0 again (refused while they start).
            var senders = ClusterPacedPosts.SendAsync(requests, () => workers[0].Process!.HasExited ? [workers[1], restarted] : [workers[0]], TimeSpan.FromSeconds(120));
            await WaitUntilAsync(() => workers[0].Process!.HasExited, () => "worker 0 did not reach its crash point: " + workers[0].Stderr);
            workers[0].Process!.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at lake.sink-committed");
            workers[1].Start();
            restarted.Start();
            await workers[1].WaitHealthyAsync();
            await restarted.WaitHealthyAsync();
            var acked = await senders;

            var expected = acked.Distinct().Order(StringComparer.Ordinal).ToList();
            expected.Count.ShouldBe(Requests * EventsPerRequest, "every request is accepted in the end");
            var (total, distinct, items, distinctItems) = (0L, 0L, 0L, 0L);
            // The skip polled too: the redelivered batch's events are in the lake already (the killed worker committed
            // them), so every event can be there before its redelivery (after the ack wait) reaches a worker.
            var skipped = false;
            await WaitUntilAsync(() =>
            {
                skipped = string.Join("\n", workers[1].Process!.Stderr, restarted.Process!.Stderr).Contains("were committed already", StringComparison.Ordinal);
                (total, distinct, items, distinctItems) = ClusterLakeQuery.Figures(temp, env);
                return total >= expected.Count && skipped && Lag(workers[1]) == 0;
            }, () => $"{total} of {expected.Count} events in the lake; the batch the killed worker committed and did not acknowledge " +
                $"{(skipped ? "was" : "was not")} skipped by a worker it came to again; {workers[1].Stderr}\n{restarted.Stderr}");
            total.ShouldBe(expected.Count, "every acknowledged event is in the lake once, nothing twice");
            distinct.ShouldBe(expected.Count);
            items.ShouldBe(distinctItems, "and each of their items once");
            ClusterLakeQuery.Query(temp, env, "SELECT event_id FROM analytics.events ORDER BY 1").Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .ShouldBe(expected, "exactly the acknowledged events");
        }
        finally
        {
            foreach (var w in workers.Append(restarted)) { w.Dispose(); }
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await c.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", c);
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>The consumer lag a worker shows (-1 while it has none to show).</summary>
    private static long Lag(ClusterWorker worker)
    {
        var (code, stdout, _) = SluiceProcess.RunAsync(worker.Data, "status", "--format", "json").GetAwaiter().GetResult();
        if (code != 0) { return -1; }
        var backlog = System.Text.Json.JsonDocument.Parse(stdout).RootElement.GetProperty("pipelines")[0].GetProperty("backlog");
        return backlog.ValueKind == System.Text.Json.JsonValueKind.Object ? backlog.GetProperty("value").GetInt64() : -1;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) { Assert.Fail($"not within 120 s: {what()}"); }
            await Task.Delay(200);
        }
    }
}
