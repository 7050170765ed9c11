using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;
using Npgsql;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// engagement-cdc through JetStream (the default <c>SLUICE_CLUSTER_CDC=jetstream</c>) on the test's own three-node
/// JetStream cluster: the slot's holder publishes the changes to JetStream and confirms the slot's position only after
/// JetStream stored them; the enrichment and the sinks run on every worker. (Three workers and the holder's SIGKILL:
/// <see cref="ClusterCdcTests"/>.)
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterCdcJetStreamTests
{
    // Generous: at a load of 120 the lake held 3,990 of 5,020 events after 90 s and was still catching up.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_lake_sink_in_a_cdc_pipeline_skips_what_a_worker_killed_after_its_lake_commit_committed_and_lands_every_change_once()
    {
        // engagement-cdc's events straight to the shared lake: no snapshot (every row is a change read after the
        // slot exists), no enrichment, the lake as the only sink.
        await using var scenario = await ChangesOnlyScenarioAsync();
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdcjl" + scenario.Id;
        var env = LakeEnvironment(scenario, nats, cluster);
        // The dead worker's partitions go to the others within seconds.
        env["SLUICE_CLUSTER_LEASE"] = "5";
        // Worker 0 holds the slot and every partition alone, and dies right after its first lake commit, before it
        // acknowledges the batch to JetStream: the slot and that batch's changes go to the workers started then.
        var doomed = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker0")).FullName, new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = "lake.sink-committed:1" });
        var workers = new List<Worker> { doomed };
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            await doomed.WaitStartedAsync();
            await WaitSlotReadAsync(scenario, doomed);
            var inserted = 0;
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await scenario.InsertAsync(20, rowsPerStatement: 5, seed: 100 + i);
                    Interlocked.Add(ref inserted, 20);
                    await Task.Delay(100);
                }
            });
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(doomed.Process.HasExited), Patience, () => Task.FromResult("worker 0 did not reach its crash point: " + doomed.Process.Stderr));
            doomed.Process.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at lake.sink-committed");

            workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker1")).FullName, env));
            workers.Add(new Worker(doomed.Data, env));
            foreach (var w in workers.Skip(1)) { await w.WaitStartedAsync(); }
            // The workers go on while the writer inserts: 100 rows more once both are up (not a fixed time, which on a
            // loaded machine may pass before the writer's next insert).
            var insertedAtStart = Volatile.Read(ref inserted);
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(Volatile.Read(ref inserted) >= insertedAtStart + 100), Patience,
                () => Task.FromResult($"the writer inserted {Volatile.Read(ref inserted) - insertedAtStart} rows after the workers started"));
            await stopWriting.CancelAsync();
            await writer;

            var expected = await scenario.PgCountAsync();
            var (events, distinct) = (0L, 0L);
            // Both polled: the redelivered batch's changes are in the lake already (the killed worker committed them),
            // so every event can be there before its redelivery (after the ack wait) reaches a worker that skips it.
            var skipped = false;
            await CdcScenario.WaitUntilAsync(() =>
            {
                skipped = string.Join("\n", workers.Skip(1).Select(w => w.Process.Stderr)).Contains("were committed already", StringComparison.Ordinal);
                (events, distinct) = Figures(scenario, env);
                return Task.FromResult(events >= expected && skipped);
            }, Patience, async () => $"{events} of postgres's {expected} events in the lake; " +
                $"the batch the killed worker committed and did not acknowledge {(skipped ? "was" : "was not")} skipped by a worker it came to again\n" +
                $"{await LossReportAsync(scenario, nats, env, cluster)}\n{ClusterCdcTests.Stderr(workers)}");
            if (events != expected || distinct != expected)
            {
                events.ShouldBe(expected, $"every change is in the lake once, nothing twice\n{await LossReportAsync(scenario, nats, env, cluster)}");
                distinct.ShouldBe(expected);
            }

            var ids = await PgIdsAsync(scenario);
            Query(scenario, env, "SELECT event_id FROM cdc.engagement_events ORDER BY 1").Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ShouldBe(ids, "exactly the source table's rows");
            // The consumers take no requests, so they keep no landing folder.
            workers.ShouldAllBe(w => !Directory.Exists(Path.Combine(w.Data, "landing", "cdc_cdc")));
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
    public async Task Changes_a_worker_holds_while_its_lake_commit_outlasts_the_ack_wait_are_not_delivered_again_before_four_ack_waits_and_land_once()
    {
        // One worker, the lake its only sink, an ack wait of 6 s. Its lake commit is held up by the test holding the
        // cluster store's write lock. For 18 s (three ack waits): without in-progress acknowledgements JetStream delivered
        // the batch's changes again after 6 s (to the same worker, which holds the partition), and under load most
        // batches. Then past four ack waits (ClusterHttpSource.ProgressAckWaits), when a stuck worker lets its changes
        // go: JetStream delivers them again, and the worker, which still holds them, writes each once.
        await using var scenario = await ChangesOnlyScenarioAsync();
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdcjp" + scenario.Id;
        var env = LakeEnvironment(scenario, nats, cluster);
        env["SLUICE_CLUSTER_ACK_WAIT"] = "6";
        var worker = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker")).FullName, env);
        try
        {
            await worker.WaitStartedAsync();
            await WaitSlotReadAsync(scenario, worker);
            await scenario.InsertAsync(20, rowsPerStatement: 5, seed: 1);
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(Figures(scenario, env).Events >= 20), Patience, () => Task.FromResult("the first changes did not reach the lake\n" + worker.Process.Stderr));

            await using var connection = new NatsConnection(new NatsOpts { Url = nats.Urls, RequestTimeout = TimeSpan.FromSeconds(10) });
            var js = connection.CreateJetStreamContext();
            var stream = (await ListAsync(js.ListStreamNamesAsync())).Single(n => n.Contains(cluster, StringComparison.OrdinalIgnoreCase));
            await using (var blocker = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
            {
                await blocker.OpenAsync();
                await using var tx = await blocker.BeginTransactionAsync();
                await using (var lockStore = new NpgsqlCommand($"SELECT pg_advisory_xact_lock(hashtext('sluice_meta_write:sluice_meta_{cluster}'))", blocker, tx)) { await lockStore.ExecuteNonQueryAsync(); }
                await scenario.InsertAsync(20, rowsPerStatement: 5, seed: 2);
                // The new changes delivered to the worker and held, unacknowledged, while its lake commit waits for the lock.
                (long AckPending, long Redelivered) seen = default;
                await CdcScenario.WaitUntilAsync(async () => (seen = await ConsumerFiguresAsync(js, stream)).AckPending >= 20, Patience,
                    () => Task.FromResult($"{seen.AckPending} changes delivered and unacknowledged\n{worker.Process.Stderr}"));
                var held = System.Diagnostics.Stopwatch.StartNew();
                await Task.Delay(TimeSpan.FromSeconds(18));
                seen = await ConsumerFiguresAsync(js, stream);
                seen.AckPending.ShouldBeGreaterThanOrEqualTo(20, "the commit was held up all along");
                seen.Redelivered.ShouldBe(0, $"JetStream delivered changes again that the worker held while its commit waited\n{worker.Process.Stderr}");

                // Progress is told for 24 s from the batch's read, and the last one lasts an ack wait more: by 36 s at the
                // latest (plus the machine's delays) JetStream has delivered the held changes again.
                await CdcScenario.WaitUntilAsync(async () => (seen = await ConsumerFiguresAsync(js, stream)).Redelivered >= 20, TimeSpan.FromSeconds(60),
                    () => Task.FromResult($"{seen.Redelivered} changes delivered again {held.Elapsed.TotalSeconds:0} s into a commit held up past {Sluice.Connectors.Nats.ClusterHttpSource.ProgressAckWaits} ack waits\n{worker.Process.Stderr}"));
                await tx.RollbackAsync();
            }

            await CdcScenario.WaitUntilAsync(() => Task.FromResult(Figures(scenario, env).Events >= 40), Patience, () => Task.FromResult("the held changes did not reach the lake\n" + worker.Process.Stderr));
            Figures(scenario, env).ShouldBe((40L, 40L), "every change once");
        }
        finally
        {
            worker.Dispose();
            await DropSchemaAsync(cluster);
        }
    }

    /// <summary>engagement-cdc's events straight to the shared lake (<see cref="LakeOnly"/>) and no snapshot: every row is a change read after the slot exists.</summary>
    private static Task<CdcScenario> ChangesOnlyScenarioAsync() =>
        CdcScenario.CreateAsync(tweak: y => LakeOnly(y.Replace("snapshot: true", "snapshot: false", StringComparison.Ordinal)));

    /// <summary>
    /// Until the worker streams the slot (log 5006), not only until the slot is active: a slot being created is active
    /// while it waits for its consistent point, and a change committed before that point is never decoded (CI: a test's
    /// only insert, made then, never reached the lake).
    /// </summary>
    private static Task WaitSlotReadAsync(CdcScenario scenario, Worker worker) =>
        CdcScenario.WaitUntilAsync(async () => worker.Process.Stderr.Contains($"Streaming {scenario.Slot} from", StringComparison.Ordinal)
            && await scenario.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}' AND active") == 1, Patience,
            () => Task.FromResult("the slot is not read: " + worker.Process.Stderr));

    /// <summary>Over every consumer of the stream, as each one's leader has it: messages delivered and not acknowledged, and of them those delivered more than once.</summary>
    private static async Task<(long AckPending, long Redelivered)> ConsumerFiguresAsync(INatsJSContext js, string stream)
    {
        var (pending, redelivered) = (0L, 0L);
        await foreach (var consumer in js.ListConsumersAsync(stream))
        {
            pending += consumer.Info.NumAckPending;
            redelivered += consumer.Info.NumRedelivered;
        }

        return (pending, redelivered);
    }

    private static async Task<List<string>> ListAsync(IAsyncEnumerable<string> names)
    {
        var list = new List<string>();
        await foreach (var n in names) { list.Add(n); }
        return list;
    }

    [Fact]
    public async Task Snapshot_rows_published_again_by_the_next_holder_land_once_and_a_second_snapshot_of_the_table_lands_whole()
    {
        // engagement_events straight to the shared lake, which appends: a snapshot row stored twice in JetStream would be
        // in it twice. The initial snapshot in batches of 100 rows.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => LakeOnly(y.Replace("batch_rows: 10000", "batch_rows: 100", StringComparison.Ordinal)));
        const int rows = 1000;
        await scenario.InsertAsync(rows, rowsPerStatement: 100, seed: 7);
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdcsn" + scenario.Id;
        var env = LakeEnvironment(scenario, nats, cluster);
        env["SLUICE_CLUSTER_LEASE"] = "5";
        // Worker 0 holds the slot alone and dies once JetStream stored the 4th batch of the initial snapshot, before the
        // relay recorded it: the next holder goes on from the 3rd (the last every sink committed) and reads the 4th's
        // rows again, in chunks at new positions, which must be known as the same rows.
        var doomed = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker0")).FullName,
            new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = Sluice.Cluster.StandByPipeline.SnapshotPublished + ":4" });
        var workers = new List<Worker> { doomed };
        try
        {
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(doomed.Process.HasExited), Patience, () => Task.FromResult("worker 0 did not reach its crash point: " + doomed.Process.Stderr));
            doomed.Process.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at " + Sluice.Cluster.StandByPipeline.SnapshotPublished);
            workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker1")).FullName, env));
            workers.Add(new Worker(doomed.Data, env));
            foreach (var w in workers.Skip(1)) { await w.WaitStartedAsync(); }

            var (events, distinct) = (0L, 0L);
            await CdcScenario.WaitUntilAsync(() =>
            {
                (events, distinct) = Figures(scenario, env);
                return Task.FromResult(distinct >= rows);
            }, Patience, () => Task.FromResult($"{distinct} of the {rows} rows in the lake ({events} in all)\n{ClusterCdcTests.Stderr(workers)}"));
            string.Join("\n", workers.Skip(1).Select(w => w.Process.Stderr)).ShouldContain("was interrupted before every sink had it", customMessage: "the next holder went on with the initial snapshot (warning 10304), not taking it again");
            // What is still in flight (a redelivery the lake skips) changes nothing: the rows are there once.
            (events, distinct) = Figures(scenario, env);
            events.ShouldBe(rows, $"every row of the snapshot is in the lake once, nothing twice\n{ClusterCdcTests.Stderr(workers)}");
            distinct.ShouldBe(rows);

            // A second snapshot of the table (what `sluice cdc snapshot` asks the running source for): all of it lands again.
            var database = await scenario.ScalarAsync<string>("SELECT current_database()");
            await using (var meta = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
            {
                await meta.OpenAsync();
                await using var ask = new NpgsqlCommand(
                    $"INSERT INTO sluice_meta_{cluster}.pg_cdc_snapshot_requests(slot, database, recipe, pipeline, schema_name, table_name, chunk_rows, kind, status, requested_at, updated_at) " +
                    "VALUES ($1, $2, 'engagement-cdc', 'cdc', 'public', 'engagement_events', 100, 'on_demand', 'queued', '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z')", meta);
                ask.Parameters.AddWithValue(scenario.Slot);
                ask.Parameters.AddWithValue(database);
                await ask.ExecuteNonQueryAsync();
            }

            long most = 0;
            await CdcScenario.WaitUntilAsync(() =>
            {
                (events, distinct) = Figures(scenario, env);
                return Task.FromResult(events >= 2 * rows);
            }, Patience, () => Task.FromResult($"{events} rows in the lake after the second snapshot, of {2 * rows}\n{ClusterCdcTests.Stderr(workers)}"));
            var counts = Query(scenario, env, "SELECT min(n), max(n) FROM (SELECT event_id, count(*) AS n FROM cdc.engagement_events GROUP BY event_id)")
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split(',').Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            most = counts[1];
            (events, distinct) = Figures(scenario, env);
            events.ShouldBe(2 * rows, "the second snapshot is not taken for the first: every row once more");
            distinct.ShouldBe(rows);
            counts[0].ShouldBe(2);
            most.ShouldBe(2);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await DropSchemaAsync(cluster);
        }
    }

    /// <summary>Where the lake's missing changes went (<see cref="ClusterLakeLossReport"/>).</summary>
    private static Task<string> LossReportAsync(CdcScenario scenario, NatsTestCluster nats, Dictionary<string, string> env, string cluster) =>
        ClusterLakeLossReport.WriteAsync(scenario, nats, cluster, Query(scenario, env, "SELECT event_id, _offset, _lsn, _seq FROM cdc.engagement_events"));

    /// <summary>The lake's events and distinct event ids, read by DuckDB (<c>sluice query --cluster</c>) from a folder no worker uses.</summary>
    private static (long Events, long Distinct) Figures(CdcScenario scenario, Dictionary<string, string> env)
    {
        var csv = Query(scenario, env, "SELECT count(*), count(DISTINCT event_id) FROM cdc.engagement_events");
        if (csv.Length == 0) { return (0, 0); }
        var values = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split(',').Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (values[0], values[1]);
    }

    /// <summary><c>sluice query --cluster</c> as CSV; empty while the lake has no such table yet.</summary>
    private static string Query(CdcScenario scenario, Dictionary<string, string> env, string sql)
    {
        using var p = SluiceProcess.StartIn(scenario.DataRoot, Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "elsewhere")).FullName, env, "query", sql, "--format", "csv", "--cluster");
        var code = p.WaitAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        if (code != 0 && p.Stderr.Contains("engagement_events", StringComparison.Ordinal)) { return ""; }
        code.ShouldBe(0, p.Stderr);
        return p.Stdout;
    }

    private static async Task<List<long>> PgIdsAsync(CdcScenario scenario)
    {
        await using var connection = new NpgsqlConnection(scenario.Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT event_id FROM engagement_events ORDER BY 1", connection);
        var ids = new List<long>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) { ids.Add(r.GetInt64(0)); }
        return ids;
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

    /// <summary>The recipe without its jobs: the backfill job is not what these tests are about (ClusterBackfillTests is).</summary>
    private static string WithoutJobs(string yaml) => yaml[..yaml.IndexOf("\njobs:", StringComparison.Ordinal)] + "\n";

    /// <summary>
    /// engagement-cdc's events straight to the shared lake, which appends (a change or snapshot row stored twice in
    /// JetStream would be in it twice): no jobs, no enrichment or its content cache, the lake the only sink.
    /// </summary>
    private static string LakeOnly(string yaml)
    {
        var y = WithoutJobs(yaml).Replace("        content: { on_update: emit, on_delete: emit }     # keeps the enrichment's content cache current\n", "", StringComparison.Ordinal);
        return y[..y.IndexOf("    steps:", StringComparison.Ordinal)] + "    sinks:\n      - type: lake\n        zone: cdc\n        partition_by: event_ts\n";
    }

    /// <summary><see cref="Environment"/> for a <see cref="LakeOnly"/> recipe: changes through JetStream (the default) and the shared lake folder.</summary>
    private static Dictionary<string, string> LakeEnvironment(CdcScenario scenario, NatsTestCluster nats, string cluster)
    {
        var env = Environment(scenario, nats, cluster);
        env.Remove("SLUICE_CLUSTER_CDC"); // the default
        env["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "shared")).FullName;
        return env;
    }

    internal static Dictionary<string, string> Environment(CdcScenario scenario, NatsTestCluster nats, string cluster)
    {
        var env = ClusterEnvironment.Cdc(cluster, scenario.ProcessEnvironment, nats, "jetstream");
        // A killed worker's unacknowledged changes go to another within seconds.
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        return env;
    }

    /// <summary>When the slot's reader last reported its position to the server.</summary>
    private static Task<DateTime> ReplyTimeAsync(CdcScenario scenario) => scenario.ScalarAsync<DateTime>(
        $"SELECT coalesce(max(r.reply_time), 'epoch')::timestamp FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '{scenario.Slot}'");

    /// <summary>Drops the cluster's shared metadata schema (<c>sluice_meta_&lt;cluster&gt;</c>) a test made.</summary>
    internal static async Task DropSchemaAsync(string cluster)
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
