using System.Diagnostics;
using Npgsql;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// engagement-cdc with <c>SLUICE_CLUSTER_CDC=jetstream</c> on the test's own three-node JetStream cluster: the slot's
/// holder publishes the changes to JetStream and confirms the slot's position only after JetStream stored them; the
/// enrichment and the sinks run on every worker.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterCdcJetStreamTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Three_workers_share_the_sinks_work_and_a_new_holder_takes_the_slot_within_10_s_of_the_holders_SIGKILL_and_every_sink_is_exact()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: WithoutJobs);
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdcjs" + scenario.Id;
        var env = Environment(scenario, nats, cluster);
        await scenario.InsertAsync(300, seed: 1);
        var workers = Enumerable.Range(0, 3).Select(i => new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env)).ToList();
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            foreach (var w in workers) { await w.WaitStartedAsync(); }
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await scenario.InsertAsync(20, rowsPerStatement: 5, seed: 100 + i);
                    await Task.Delay(100);
                }
            });

            // The sinks' work is spread: more than one worker reads changes from JetStream (one of them the holder).
            await CdcScenario.WaitUntilAsync(async () => (await ReadingAsync(workers)).Count >= 2 && await scenario.ClickHouseCountAsync() >= 600, Patience,
                async () => $"workers reading: {(await ReadingAsync(workers)).Count}, clickhouse {await scenario.ClickHouseCountAsync()}\n{ClusterCdcTests.Stderr(workers)}");

            var holder = await ClusterCdcTests.HolderAsync(scenario, workers);
            var before = await scenario.PgCountAsync();
            var killed = Stopwatch.StartNew();
            holder.Kill();
            Worker? next = null;
            while (next is null)
            {
                killed.Elapsed.ShouldBeLessThan(Patience, $"no worker took the slot after its holder's SIGKILL\n{ClusterCdcTests.Stderr(workers)}");
                await Task.Delay(50);
                var now = await ClusterCdcTests.HolderAsync(scenario, workers);
                if (now != holder) { next = now; }
            }

            var takeOver = killed.Elapsed;
            Console.WriteLine($"a new worker held the slot {takeOver.TotalMilliseconds:0} ms after the SIGKILL of its holder");
            takeOver.ShouldBeLessThanOrEqualTo(TimeSpan.FromSeconds(10), ClusterCdcTests.Stderr(workers));

            // What was written after the kill reaches the sinks through the new holder.
            await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() > before, Patience,
                async () => $"clickhouse {await scenario.ClickHouseCountAsync()}, postgres before the kill {before}\n{ClusterCdcTests.Stderr(workers)}");
            await stopWriting.CancelAsync();
            await writer;
            await scenario.WaitForAllSinksAsync(Patience);
            await scenario.AssertExactAsync();
            workers.Where(w => w != holder).ShouldAllBe(w => !w.Process.HasExited, ClusterCdcTests.Stderr(workers));
        }
        finally
        {
            await stopWriting.CancelAsync();
            if (writer is not null) { await writer.ContinueWith(_ => { }, TaskScheduler.Default); }
            foreach (var w in workers) { w.Dispose(); }
            await DropSchemaAsync(cluster);
        }
    }

    [Fact]
    public async Task The_slots_position_is_not_confirmed_while_jetstream_has_not_stored_the_changes_and_nothing_is_lost_once_it_is_back()
    {
        // Status every second, so the slot would be confirmed within a second of the sinks' commit in the old design.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => WithoutJobs(y).Replace("status_interval: 5s", "status_interval: 1s", StringComparison.Ordinal));
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdcjs" + scenario.Id;
        var env = Environment(scenario, nats, cluster);
        await scenario.InsertAsync(300, seed: 1);
        var worker = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker")).FullName, env);
        try
        {
            await worker.WaitStartedAsync();
            await scenario.WaitForAllSinksAsync(Patience);

            for (var i = 0; i < 3; i++) { nats.Kill(i); }
            await scenario.InsertAsync(50, rowsPerStatement: 10, seed: 2);
            var written = await scenario.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text");
            // The holder read the new changes and could not publish them.
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(worker.Process.Stderr.Contains("are not stored", StringComparison.Ordinal)), Patience,
                () => Task.FromResult(worker.Process.Stderr));
            // Two more status messages from the reader to the server: the confirmed position it reports stays before the new changes.
            var reply = await ReplyTimeAsync(scenario);
            await CdcScenario.WaitUntilAsync(async () => await ReplyTimeAsync(scenario) > reply.AddSeconds(1.5), Patience, () => Task.FromResult(worker.Process.Stderr));
            (await scenario.ScalarAsync<bool>($"SELECT confirmed_flush_lsn < '{written}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'"))
                .ShouldBeTrue($"the slot was confirmed past changes JetStream never stored (written up to {written})\n{worker.Process.Stderr}");

            for (var i = 0; i < 3; i++) { nats.Start(i); }
            for (var i = 0; i < 3; i++) { await nats.WaitReadyAsync(i); }
            await scenario.WaitForAllSinksAsync(Patience);
            await scenario.AssertExactAsync();
            await CdcScenario.WaitUntilAsync(async () => await scenario.ScalarAsync<bool>($"SELECT confirmed_flush_lsn >= '{written}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'"), Patience,
                () => Task.FromResult("the slot's position did not move past the changes once JetStream stored them\n" + worker.Process.Stderr));
        }
        finally
        {
            worker.Dispose();
            await DropSchemaAsync(cluster);
        }
    }

    /// <summary>Jobs do not run in cluster mode yet: the backfill job is left out of the recipe.</summary>
    private static string WithoutJobs(string yaml) => yaml[..yaml.IndexOf("\njobs:", StringComparison.Ordinal)] + "\n";

    private static Dictionary<string, string> Environment(CdcScenario scenario, NatsTestCluster nats, string cluster)
    {
        var env = scenario.ProcessEnvironment;
        env["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString;
        env["SLUICE_CLUSTER_NAME"] = cluster;
        env["SLUICE_CLUSTER_NATS"] = nats.Urls;
        env["SLUICE_CLUSTER_CDC"] = "jetstream";
        // A killed worker's unacknowledged changes go to another within seconds.
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        return env;
    }

    private static async Task<List<Worker>> ReadingAsync(IEnumerable<Worker> workers)
    {
        var reading = new List<Worker>();
        foreach (var w in workers)
        {
            if (!w.Process.HasExited && (await w.PipelineAsync()).GetProperty("recordsIn").GetInt64() > 0) { reading.Add(w); }
        }

        return reading;
    }

    /// <summary>When the slot's reader last reported its position to the server.</summary>
    private static Task<DateTime> ReplyTimeAsync(CdcScenario scenario) => scenario.ScalarAsync<DateTime>(
        $"SELECT coalesce(max(r.reply_time), 'epoch')::timestamp FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '{scenario.Slot}'");

    private static async Task DropSchemaAsync(string cluster)
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
