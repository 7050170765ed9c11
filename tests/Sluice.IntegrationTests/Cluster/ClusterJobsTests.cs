using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Hosting;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// Jobs on a cluster (issue 18): three workers' schedulers on one shared Postgres store and one fake clock fire each slot
/// once; the runner of a slot cut off from the store mid-run (its connections dropped, as by a dead process or a network
/// cut) loses its lease, its run shows as interrupted, and one other worker re-runs the slot, once.
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterJobsTests : IDisposable
{
    private readonly PostgresMetadataFixture _fixture = new();
    private readonly List<TempFolder> _folders = [];
    private readonly List<RefusingPort> _reservations = [];

    public void Dispose()
    {
        _fixture.Dispose();
        foreach (var f in _folders) { f.Dispose(); }
        foreach (var r in _reservations) { r.Dispose(); }
    }

    [Fact]
    public async Task Three_schedulers_fire_each_slot_once_and_a_cut_off_runners_slot_is_rerun_once_by_another_worker()
    {
        var time = _fixture.Time;
        var start = time.GetUtcNow();
        var blockedSlot = start.AddMinutes(2);
        var calls = new ConcurrentQueue<(int Worker, DateTimeOffset AsOf, string Trigger)>();
        var blocked = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = new List<(EngineServices Services, TcpForwarder Link)>();
        var job = new JobDefinition("shop", "models", "test", "* * * * *", new RecordingJob(services => workers.FindIndex(w => w.Services == services), calls, blockedSlot, blocked));
        using var stop = new CancellationTokenSource();
        var running = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            // Each worker reaches Postgres through a link of its own, which the test can cut.
            // Reserved for the whole test: once the link is cut the port refuses, and no other server can take it.
            var reserved = FreePort.Refusing();
            _reservations.Add(reserved);
            var port = reserved.Port;
            var link = new TcpForwarder(port, ServerSettings.PgHost, ServerSettings.PgPort);
            var settings = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Host = "127.0.0.1", Port = port, ApplicationName = $"sluice-jobs-{i}", Timeout = 3 };
            var folder = new TempFolder("cluster-jobs");
            _folders.Add(folder);
            var services = new EngineServices(new DataDirectory(folder.Path), time, NullLoggerFactory.Instance, shared: SharedMetadata.Parse(settings.ConnectionString, _fixture.Cluster));
            workers.Add((services, link));
            var runner = new JobRunner(services);
            var scheduler = new CronScheduler([job], (j, asOf, ct) => runner.RunSlotAsync(j, asOf, lease => runner.RunAsync(j, new JobRequest(asOf, Trigger: "schedule"), ct, claimed: lease)), time, NullLogger.Instance);
            var takeover = new JobTakeover(runner, [job], (j, lease, ct) => runner.RunAsync(j, new JobRequest(lease.AsOf, Trigger: "rerun"), ct, claimed: lease), time, NullLogger.Instance);
            running.Add(scheduler.RunAsync(stop.Token));
            running.Add(takeover.RunAsync(stop.Token));
        }

        await AdvanceAsync(time, TimeSpan.FromMinutes(2));
        var runnerOfBlocked = await blocked.Task.WaitAsync(TimeSpan.FromSeconds(90));
        // The runner of the 12:02 slot is cut off from the store mid-run: it can no longer renew its lease.
        await workers[runnerOfBlocked].Link.DisposeAsync();
        await AdvanceAsync(time, TimeSpan.FromMinutes(3));
        await Wait.UntilAsync(() => calls.Count(c => c.Trigger == "rerun") == 1);

        await stop.CancelAsync();
        await Task.WhenAll(running);
        for (var i = 0; i < workers.Count; i++)
        {
            if (i != runnerOfBlocked) { await workers[i].Link.DisposeAsync(); }
            workers[i].Services.Dispose();
        }

        var slots = Enumerable.Range(1, 5).Select(m => start.AddMinutes(m)).ToList();
        calls.Where(c => c.Trigger == "schedule").Select(c => c.AsOf).Order().ToList().ShouldBe(slots, "each slot fired once across the three workers");
        var rerun = calls.Single(c => c.Trigger == "rerun");
        rerun.AsOf.ShouldBe(blockedSlot);
        rerun.Worker.ShouldNotBe(runnerOfBlocked, "the cut-off worker cannot reach the store; another took the slot over");
        calls.Select(c => c.Worker).Distinct().Count().ShouldBeGreaterThan(1, "slots are taken by whichever worker claims them first");

        var history = new JobRunStore(_fixture.Store, time).Runs("shop/models", 20);
        history.Where(r => r.AsOf == blockedSlot).Select(r => (r.Trigger, r.Status)).ShouldBe(new[] { ("rerun", JobRunStore.Succeeded), ("schedule", JobRunStore.Interrupted) });
        history.Where(r => r.AsOf != blockedSlot).ShouldAllBe(r => r.Status == JobRunStore.Succeeded && r.Trigger == "schedule");
        history.Count.ShouldBe(6);
    }

    [Fact]
    public async Task Three_run_cluster_workers_fire_a_slot_once_and_a_killed_runners_slot_is_rerun_once_with_the_tables_of_a_clean_run()
    {
        using var root = new TempFolder("cluster-jobs");
        var recipe = WriteRecipe(root);
        var database = $"cj_{Guid.NewGuid():N}"[..20];
        await AdminAsync($"CREATE DATABASE {database}");
        var workers = new List<SluiceProcess>();
        try
        {
            // No HTTP pipeline: the NATS servers are named (cluster mode requires them) but never reached.
            var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(database));
            env[JobLeases.TtlVariable] = "3";
            for (var i = 0; i < 3; i++) { workers.Add(SluiceProcess.StartIn(root.Path, root.Sub($"worker{i}"), env, "run", recipe, "--cluster")); }
            foreach (var w in workers) { await w.WaitForOutputAsync("schedule(s); Ctrl-C stops", TimeSpan.FromSeconds(120)); }

            // The next minute's slot starts on one worker; it is SIGKILLed while the model runs (it sleeps 15 s: long
            // enough that the run seen running is still running when the kill comes, on a loaded machine too).
            var (slot, pid) = await FirstAsync(
                "SELECT as_of, pid FROM job_runs WHERE trigger = 'schedule' AND status = 'running'", r => (r.GetString(0), r.GetInt64(1)), TimeSpan.FromSeconds(150));
            var killed = workers.Single(w => w.Pid == pid);
            killed.Kill();
            await FirstAsync("SELECT id FROM job_runs WHERE trigger = 'rerun' AND status <> 'running'", r => r.GetInt64(0), TimeSpan.FromSeconds(120));

            var runs = await AllAsync($"SELECT trigger, status, pid, id FROM job_runs WHERE as_of = '{slot}' ORDER BY id", r => (r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3)));
            runs.Count.ShouldBe(2, string.Join("; ", runs));
            (runs[0].Item1, runs[0].Item2, runs[0].Item3).ShouldBe(("schedule", JobRunStore.Interrupted, pid), "the slot fired once, on the killed worker");
            (runs[1].Item1, runs[1].Item2).ShouldBe(("rerun", JobRunStore.Succeeded), "re-run once, by another worker");
            runs[1].Item3.ShouldNotBe(pid);
            // The killed run by its id: the next minute's slot may have started by now (its run the newest).
            new JobRunStore(_fixture.Store, _fixture.Time).Runs("cluster-jobs/ticks", 10).Single(r => r.Id == runs[0].Item4).Status.ShouldBe(JobRunStore.Interrupted);

            // The warehouse holds what one clean run writes: the killed run's transaction left nothing behind.
            var day = slot[..10];
            var rows = await WarehouseRowsAsync(database);
            rows.ShouldBe(new[] { $"{day},1", $"{day},2", $"{day},3" });
            foreach (var w in workers.Where(w => w != killed)) { w.HasExited.ShouldBeFalse(w.Stderr); }
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            NpgsqlConnection.ClearAllPools();
            await AdminAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        }
    }

    /// <summary>A recipe of one models job on PostgreSQL, every minute; its model sleeps 15 s so a run can be killed mid-way.</summary>
    private static string WriteRecipe(TempFolder root)
    {
        var folder = root.Sub("cluster-jobs");
        Directory.CreateDirectory(Path.Combine(folder, "models", "mart"));
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), """
            name: cluster-jobs
            description: A models job on PostgreSQL fired every minute by every worker of a cluster.

            jobs:
              ticks:
                type: models
                schedule: "* * * * *"
                folder: models
                engine: postgres
            """);
        File.WriteAllText(Path.Combine(folder, "models", "mart", "ticks.sql"), """
            /*
            kind: incremental
            partition_by: as_of_date
            */
            SELECT {{ as_of }} AS as_of_date, n FROM generate_series(1, 3) AS g(n), pg_sleep(15) AS s
            """);
        return folder;
    }

    /// <summary>The first row the query returns, waiting for one to appear.</summary>
    private async Task<T> FirstAsync<T>(string sql, Func<NpgsqlDataReader, T> read, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await AllAsync(sql, read) is [var first, ..]) { return first; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"no row of '{sql}' within {timeout.TotalSeconds:0} s");
            await Task.Delay(100);
        }
    }

    /// <summary>Rows of the cluster's shared metadata schema (none before its tables are made).</summary>
    private Task<List<T>> AllAsync<T>(string sql, Func<NpgsqlDataReader, T> read) =>
        ClusterProbes.RowsAsync(_fixture.Shared("probe").ConnectionString(), sql, read, "job_runs");

    private static async Task<List<string>> WarehouseRowsAsync(string database)
    {
        await using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = database }.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT as_of_date::text || ',' || n FROM mart.ticks ORDER BY n", c);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await r.ReadAsync()) { rows.Add(r.GetString(0)); }
        return rows;
    }

    private static async Task AdminAsync(string sql)
    {
        await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Moves the shared clock a second at a time, letting schedulers, renewals and take-overs run between steps.</summary>
    private static async Task AdvanceAsync(Microsoft.Extensions.Time.Testing.FakeTimeProvider time, TimeSpan by)
    {
        for (var moved = TimeSpan.Zero; moved < by; moved += TimeSpan.FromSeconds(1))
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(50);
        }
    }

    /// <summary>A job that records which worker ran which slot; the first run of <paramref name="blockedSlot"/> hangs until cancelled.</summary>
    private sealed class RecordingJob(Func<IEngineServices, int> worker, ConcurrentQueue<(int, DateTimeOffset, string)> calls, DateTimeOffset blockedSlot, TaskCompletionSource<int> blocked) : IJobFactory
    {
        public IJob Create(IEngineServices services) => new Run(worker(services), calls, blockedSlot, blocked);

        private sealed class Run(int worker, ConcurrentQueue<(int, DateTimeOffset, string)> calls, DateTimeOffset blockedSlot, TaskCompletionSource<int> blocked) : IJob
        {
            public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
            {
                calls.Enqueue((worker, request.AsOf, request.Trigger));
                if (request.AsOf == blockedSlot && request.Trigger == "schedule" && blocked.TrySetResult(worker))
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }

                return new JobOutcome(1, 1, "ran");
            }
        }
    }
}
