using System.Text.Json;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// <c>sluice cdc snapshot --cluster</c> (docs/CDC.md, "Snapshots on demand"): asked from a process of its own on a folder
/// no worker uses, the request is stored in the cluster's shared store, the slot's holder takes it, and when the holder
/// is SIGKILLed mid-snapshot the worker that takes the slot over goes on from the last chunk recorded. The command
/// follows it to the end; the change log's last change per key equals the source table, every column, both ways.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterCdcSnapshotTests
{
    // Generous: three workers (and three NATS nodes) start and hand the slot over on a machine loaded by other tests.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Theory]
    [InlineData("jetstream")]
    [InlineData("holder")]
    public async Task A_snapshot_asked_with_cluster_from_another_machine_is_finished_by_the_next_holder_after_the_holders_SIGKILL(string cdc)
    {
        // No initial snapshot: the rows there before the start reach the sink only through the snapshot asked for.
        await using var scenario = await CdcSnapshotScenario.CreateAsync(rows: 2000, snapshot: false, keyless: false);
        await using var nats = cdc == "jetstream" ? await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName) : null;
        var cluster = "ccdcsq" + scenario.Id;
        var env = ClusterEnvironment.Cdc(cluster, scenario.Environment, nats, cdc);
        // The dead holder's partitions and unacknowledged changes go to the others within seconds.
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        env["SLUICE_CLUSTER_LEASE"] = "5";
        // "Another machine": a folder of its own that no worker uses and the command does not need.
        var elsewhere = Path.Combine(scenario.RecipesRoot, "elsewhere");
        SluiceProcess Command(params string[] args) => SluiceProcess.StartIn(scenario.RecipesRoot, elsewhere, env, args);

        // No worker yet: refused, saying so (and nothing is stored for a worker to take later).
        using (var early = Command("cdc", "snapshot", "snap/cdc", "--table", "items", "--cluster"))
        {
            (await early.WaitAsync(Patience)).ShouldBe(1, early.Stderr);
            early.Stderr.ShouldContain("no worker of 'snap' is running in the cluster");
        }

        // Worker 0 starts alone, so it holds the slot, and SIGKILLs itself right after the snapshot's 3rd chunk is recorded.
        var doomed = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker0")).FullName,
            new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = $"{PgIncrementalSnapshot.ChunkRecorded}:3" }, "snap");
        var workers = new List<Worker> { doomed };
        using var churn = new CancellationTokenSource();
        Task<int>? churning = null;
        try
        {
            await doomed.WaitStartedAsync();
            await CdcScenario.WaitUntilAsync(async () => await scenario.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}' AND active") == 1,
                Patience, () => Task.FromResult("the slot is not read: " + doomed.Process.Stderr));
            for (var i = 1; i < 3; i++) { workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env, "snap")); }
            foreach (var w in workers.Skip(1)) { await w.WaitStartedAsync(); }
            using var snapshot = Command("cdc", "snapshot", "snap/cdc", "--table", "items", "--chunk-rows", "100", "--cluster");
            await snapshot.WaitForOutputAsync("handed to", Patience);
            // Updates, deletes and inserts stream while the snapshot is taken, before and after the kill.
            churning = CdcIncrementalSnapshotTests.ChurnAsync(scenario, 2200, 1, churn.Token, TimeSpan.FromMilliseconds(20));
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(doomed.Process.HasExited), Patience,
                () => Task.FromResult($"the holder did not reach its crash point\n{snapshot.Stderr}\n{ClusterCdcTests.Stderr(workers)}"));
            doomed.Process.Stderr.ShouldContain($"killed at {PgIncrementalSnapshot.ChunkRecorded}");

            // The command follows the request in the shared store through the take-over, to its end.
            var code = await snapshot.WaitAsync(Patience);
            await churn.CancelAsync();
            var changes = await churning;
            code.ShouldBe(0, $"{snapshot.Stdout}\n{snapshot.Stderr}\n{ClusterCdcTests.Stderr(workers)}");
            snapshot.Stderr.ShouldContain("running worker(s) of 'snap'");
            snapshot.Stderr.ShouldMatch(@"snapshot 1 of public\.items: \d+/2000 \(rows\)");
            snapshot.Stdout.ShouldContain("snapshot 1 of public.items done:");
            var survivors = string.Join("\n", workers.Skip(1).Select(w => w.Process.Stderr));
            survivors.ShouldContain("Incremental snapshot 1 of public.items resumes after key", customMessage: "the next holder went on with the snapshot (event 10301)");
            survivors.ShouldContain("(300 rows read before the stop)");

            await scenario.WaitForEqualAsync(Patience);
            // The kill came right after chunk 3 was recorded, so the next holder went on with chunk 4: no row was read
            // twice (a chunk read again enters the change log at a new position, a row of its own).
            (await scenario.ScalarAsync<long>("SELECT count(*) - count(DISTINCT id) FROM sink.items WHERE _op = 'r'")).ShouldBe(0,
                await scenario.ScalarAsync<string>("SELECT string_agg(id::text, ',') FROM (SELECT id FROM sink.items WHERE _op = 'r' GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 20) x"));
            Console.WriteLine($"{cdc}: snapshot of 2000 rows beside {changes} streamed changes, its holder killed after 3 chunks: finished by the next holder");

            // The progress from any machine: status --cluster reads it from the shared store.
            using var status = Command("status", "--cluster", "--format", "json");
            (await status.WaitAsync(Patience)).ShouldBe(0, status.Stderr);
            var shown = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("snapshots")[0];
            shown.GetProperty("pipeline").GetString().ShouldBe("snap/cdc", status.Stdout);
            shown.GetProperty("table").GetString().ShouldBe("public.items");
            shown.GetProperty("state").GetString().ShouldBe(SnapshotStatus.Done);
            shown.GetProperty("total").GetInt64().ShouldBe(2000);
            shown.GetProperty("chunks").GetInt64().ShouldBeGreaterThan(3);
            shown.GetProperty("rowsRead").GetInt64().ShouldBeGreaterThan(300);
            Directory.Exists(elsewhere).ShouldBeFalse("a command on the shared store makes no data folder");
        }
        finally
        {
            await churn.CancelAsync();
            if (churning is not null) { await churning.ContinueWith(_ => { }, TaskScheduler.Default); }
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
        }
    }
}
