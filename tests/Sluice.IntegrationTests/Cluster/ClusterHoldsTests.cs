using System.Globalization;
using System.Text.Json;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// What each worker holds, and pulls in cluster mode: three <c>sluice run --cluster</c> workers of a recipe with an
/// HTTP pipeline (per-key order: partitions leased), a <c>postgres_pull</c> pipeline (one puller under the pull's lease)
/// and a models job every minute, on the services' NATS cluster and one shared metadata store. The registry (what
/// <c>status --cluster</c> reads) shows the pull and the partitions under the workers holding them; the puller is
/// SIGKILLed while rows are inserted: another worker takes the pull over and the partitions are shared out among the
/// two left; a dead letter is replayed with <c>--cluster</c>; <c>models run --cluster</c> runs the job under its lease;
/// and every row of the source is in the sink once. A job run's hold in the registry: <see cref="A_job_run_holds_its_lease_in_the_worker_registry_while_it_runs"/>.
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterHoldsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private const int Partitions = 6;

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-holds");
    private readonly string _name = "holds-" + Guid.NewGuid().ToString("N")[..8];

    public void Dispose()
    {
        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Status_shows_the_pull_partitions_and_job_under_their_holders_and_a_killed_pullers_pull_goes_on_elsewhere_with_every_row_once()
    {
        var database = "ch_" + Guid.NewGuid().ToString("N")[..12];
        await SqlAsync(ServerSettings.PostgresConnectionString, $"CREATE DATABASE {database}");
        var source = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = database }.ConnectionString;
        var workers = new List<ClusterWorker>();
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            await SqlAsync(source, """
                CREATE TABLE holds_src (id text PRIMARY KEY, n integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
                INSERT INTO holds_src (id, n) SELECT 'r' || lpad(g::text, 6, '0'), g FROM generate_series(1, 200) g;
                """);
            var recipe = WriteRecipe();
            var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(database));
            env["SLUICE_CLUSTER_PARTITIONS"] = Partitions.ToString(CultureInfo.InvariantCulture);
            env["SLUICE_CLUSTER_ORDER"] = "key";
            env[PartitionLeases.DurationVariable] = "3";
            env[JobLeases.TtlVariable] = "10";
            workers.AddRange(ClusterWorker.StartAll(_temp, 3, recipe, env, stream: "events"));

            foreach (var w in workers) { await w.WaitHealthyAsync(); }
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await SqlAsync(source, $"INSERT INTO holds_src (id, n) SELECT 'w' || lpad(({i} * 10 + g)::text, 6, '0'), g FROM generate_series(1, 10) g");
                    await Task.Delay(100);
                }
            });

            // One worker pulls; the partitions are shared out, each held by one worker.
            var pullItem = $"{_name}/pull";
            var puller = await UntilAsync(() =>
            {
                var live = Live(workers);
                var pullers = live.Where(w => Held(w.View, "pulls").Contains(pullItem)).ToList();
                var partitions = live.SelectMany(w => Held(w.View, "partitions")).ToList();
                return (pullers.Count == 1 && partitions.Count == Partitions && partitions.Distinct().Count() == Partitions, pullers.FirstOrDefault().Worker);
            }, "one puller and every partition held once", workers);
            await UntilAsync(async () => (await CountAsync(source, "SELECT count(*) FROM pulled.holds_src") >= 300, true), "the pull mid-stream", workers);

            // The puller's SIGKILL: another worker takes the pull over (lease 3 s) and the two left share its partitions.
            puller.Kill();
            var survivors = workers.Where(w => w != puller).ToList();
            var next = await UntilAsync(() =>
            {
                var live = Live(survivors);
                var pullers = live.Where(w => Held(w.View, "pulls").Contains(pullItem)).ToList();
                var partitions = live.SelectMany(w => Held(w.View, "partitions")).ToList();
                return (pullers.Count == 1 && live.Count == 2 && partitions.Count == Partitions && partitions.Distinct().Count() == Partitions, pullers.FirstOrDefault().Worker);
            }, "the pull and the partitions taken over by the two workers left", workers);
            next.ShouldNotBe(puller);

            // status --cluster, from a folder no worker uses, shows the same: one of the two left holds the pull and partitions
            // are listed. Polled: on a loaded machine a 3 s lease can change hands between the probe above and the command.
            var survivorPids = survivors.Select(w => w.Process!.Pid).ToHashSet();
            await UntilAsync(async () =>
            {
                using var status = SluiceProcess.StartIn(_temp.Path, _temp.Sub("elsewhere"), env, "status", "--cluster", "--format", "json");
                (await status.WaitAsync(Patience)).ShouldBe(0, status.Stderr);
                var listed = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("workers").EnumerateArray()
                    .Where(w => survivorPids.Contains(w.GetProperty("pid").GetInt32())).ToList();
                static IReadOnlyList<string?> Items(JsonElement worker, string kind) =>
                    worker.TryGetProperty("holds", out var holds) && holds.TryGetProperty(kind, out var items)
                        ? items.EnumerateArray().Select(p => p.GetString()).ToList() : [];
                var pullers = listed.Where(w => Items(w, "pulls").SequenceEqual([pullItem])).ToList();
                return (pullers.Count == 1 && listed.Sum(w => Items(w, "partitions").Count) == Partitions, true);
            }, "status --cluster listing the pull under one survivor and every partition", workers);

            // A bad event's dead letter, edited and replayed with --cluster from a folder no worker uses, is published to
            // the pipeline's JetStream stream and lands through the running workers.
            using (var created = SluiceProcess.StartIn(_temp.Path, _temp.Sub("elsewhere"), env, "tokens", "create", "--role", "writer", "--tenant", "acme", "--cluster"))
            {
                (await created.WaitAsync(Patience)).ShouldBe(0, created.Stderr);
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
                var bad = """[{"schema_version":1,"key":"late","ts":"not a time"}]"""u8.ToArray();
                var bearer = created.Stdout.Trim().Split('\n')[^1];
                // Sent again on a 503 or a timeout (a worker busy on a loaded machine), as a client would.
                await UntilAsync(async () => (await next.TryPostAsync(http, bad, bearer), true), "the bad event accepted: " + next.LastFailure, workers);
            }

            var letter = await UntilAsync(async () =>
            {
                var (code, listed, err) = await CliAsync(env, "dlq", "list", "--cluster", "--format", "json");
                code.ShouldBe(0, err);
                var found = JsonDocument.Parse(listed).RootElement.EnumerateArray().Select(l => l.GetProperty("id").GetInt64()).ToList();
                return (found.Count == 1, found.FirstOrDefault());
            }, "the bad event's dead letter", workers);
            var id = letter.ToString(CultureInfo.InvariantCulture);
            var edited = await CliAsync(env, "dlq", "edit", id, "--raw", """{"schema_version":1,"key":"late","ts":"2025-11-08T10:00:00Z"}""", "--cluster");
            edited.Code.ShouldBe(0, edited.Err);
            var replayed = await CliAsync(env, "dlq", "replay", id, "--cluster");
            replayed.Code.ShouldBe(0, replayed.Err);
            replayed.Out.ShouldContain($"{id}: replayed");
            await UntilAsync(async () => (await CountAsync(ServerSettings.PostgresConnectionString, $"SELECT count(*) FROM \"{_name.Replace('-', '_')}_sink\".events WHERE tenant_id = 'acme' AND key = 'late'") == 1, true),
                "the replayed event in the sink", workers);

            // models run --cluster runs the whole job under its lease in the shared store, from a folder no worker uses; a partial run is refused.
            var models = await CliAsync(env, "models", "run", recipe, "--cluster", "--date", "2025-01-15");
            models.Code.ShouldBe(0, models.Err);
            (await CountAsync(source, "SELECT count(*) FROM mart.ticks WHERE as_of_date = '2025-01-15'")).ShouldBe(3);
            (await CountAsync(_fixture.Shared("probe").ConnectionString(), "SELECT count(*) FROM job_runs WHERE trigger = 'manual' AND status = 'succeeded' AND as_of LIKE '2025-01-15%'")).ShouldBe(1);
            var build = await CliAsync(env, "models", "build", recipe, "--cluster");
            build.Code.ShouldBe(1, build.Err);
            build.Err.ShouldContain("models build --cluster: a partial run would write");

            await stopWriting.CancelAsync();
            await writer;
            var rows = await CountAsync(source, "SELECT count(*) FROM holds_src");
            await UntilAsync(async () => (await CountAsync(source, "SELECT count(*) FROM pulled.holds_src") >= rows, true), "every row pulled", workers);
            (await CountAsync(source, "SELECT count(*) FROM pulled.holds_src")).ShouldBe(rows, "no row twice");
            (await CountAsync(source, "SELECT count(*) FROM holds_src s JOIN pulled.holds_src p ON p._id = s.id AND p.n = s.n")).ShouldBe(rows, "every row of the source, as it is there");
            survivors.ShouldAllBe(w => !w.Process!.HasExited, string.Join("\n", workers.Select(w => w.Stderr)));
        }
        finally
        {
            await stopWriting.CancelAsync();
            if (writer is not null) { await writer.ContinueWith(_ => { }, TaskScheduler.Default); }
            foreach (var w in workers) { w.Dispose(); }
            NpgsqlConnection.ClearAllPools();
            await SqlAsync(ServerSettings.PostgresConnectionString, $"DROP DATABASE IF EXISTS {database} WITH (FORCE); DROP SCHEMA IF EXISTS \"{_name.Replace('-', '_')}_sink\" CASCADE");
        }
    }

    [Fact]
    public async Task A_job_run_holds_its_lease_in_the_worker_registry_while_it_runs()
    {
        using var folder = new TempFolder("sluice-holds-job");
        using var services = new Sluice.Hosting.EngineServices(new DataDirectory(folder.Path), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, shared: _fixture.Shared("w1"));
        var registry = new WorkerRegistry(services.Metadata, TimeProvider.System, new WorkerInfo("w1", "host-a", Environment.ProcessId, 8081, "shop", "1.0.0"), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        services.Worker = registry;
        IReadOnlyList<string>? during = null;
        var job = new JobDefinition("shop", "nightly", "test", null, new Observing(() => during = registry.Holding.TryGetValue("jobs", out var j) ? j : []));
        var runner = new JobRunner(services);
        await runner.RunAsync(job, new JobRequest(DateTimeOffset.UtcNow, Trigger: "manual"), CancellationToken.None, started: id => during = [$"started {id}"]);
        var run = runner.Runs.Runs("shop/nightly", 1).Single();
        during.ShouldBe([$"shop/nightly (run {run.Id})"], "while the run holds the job's lease, the worker lists it");
        registry.Holding.ContainsKey("jobs").ShouldBeFalse("a finished run holds nothing");
    }

    private sealed class Observing(Action observe) : IJobFactory
    {
        public IJob Create(IEngineServices services) => new Run(observe);

        private sealed class Run(Action observe) : IJob
        {
            public Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
            {
                observe();
                return Task.FromResult(new JobOutcome(0, 0, "observed"));
            }
        }
    }

    /// <summary>The recipe: HTTP events to Postgres, a pull of <c>holds_src</c> to Postgres, a models job every minute whose model takes 15 s.</summary>
    private string WriteRecipe()
    {
        var folder = Directory.CreateDirectory(_temp.Sub(_name)).FullName;
        Directory.CreateDirectory(Path.Combine(folder, "schemas"));
        Directory.CreateDirectory(Path.Combine(folder, "models", "mart"));
        File.WriteAllText(Path.Combine(folder, "schemas", "events.v1.yaml"), "version: 1\nfields:\n  key: string\n  ts: timestamp\n");
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"""
            name: {_name}
            pipelines:
              events:
                source:
                  type: http
                  stream: events
                  table: events
                  schemas:
                    1: schemas/events.v1.yaml
                  time_field: ts
                sinks:
                  - type: postgres
                    schema: {_name.Replace('-', '_')}_sink
                    connection: "{ServerSettings.PostgresConnectionString}"
                    keys:
                      events: [tenant_id, key]
              pull:
                source:
                  type: postgres_pull
                  table: holds_src
                  page_size: 20
                  overlap: 5m
                  poll_interval: 1s
                  columns: {"{"}n: integer{"}"}
                sinks:
                  - type: postgres
                    schema: pulled
                    keys:
                      holds_src: [_id, _modified]
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

    /// <summary>The registry's entries of <paramref name="among"/> that beat (green or red), with their process.</summary>
    private List<(ClusterWorker Worker, WorkerView View)> Live(IEnumerable<ClusterWorker> among)
    {
        var views = WorkerRegistry.List(_fixture.Store, TimeProvider.System);
        return among.SelectMany(w => views.Where(v => v.Pid == w.Process!.Pid && v.Health is "green" or "red").Select(v => (w, v))).ToList();
    }

    private static IReadOnlyList<string> Held(WorkerView view, string kind) => view.Holds.TryGetValue(kind, out var items) ? items : [];

    /// <summary>The models job's running run on one of <paramref name="pids"/>, and its process, once there is one.</summary>
    private async Task<(bool, (long Id, long Pid))> RunningAsync(long[] pids)
    {
        await using var c = new NpgsqlConnection(_fixture.Shared("probe").ConnectionString());
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT id, pid FROM job_runs WHERE status = 'running' AND pid = ANY(@pids) ORDER BY id DESC LIMIT 1", c);
        cmd.Parameters.AddWithValue("pids", pids);
        await using var r = await cmd.ExecuteReaderAsync();
        return await r.ReadAsync() ? (true, (r.GetInt64(0), r.GetInt64(1))) : (false, default);
    }

    private static Task<T> UntilAsync<T>(Func<(bool Found, T Value)> probe, string what, IReadOnlyList<ClusterWorker> workers, TimeSpan? patience = null) =>
        ClusterProbes.UntilAsync(probe, what, workers, patience ?? Patience);

    private static Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, IReadOnlyList<ClusterWorker> workers, TimeSpan? patience = null) =>
        ClusterProbes.UntilAsync(probe, what, workers, patience ?? Patience);

    /// <summary>A <c>sluice</c> command from a folder no worker uses (<c>--cluster</c> needs none).</summary>
    private async Task<(int Code, string Out, string Err)> CliAsync(IDictionary<string, string> env, params string[] args)
    {
        using var p = SluiceProcess.StartIn(_temp.Path, _temp.Sub("elsewhere"), env, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Stdout, p.Stderr);
    }

    /// <summary>A count, 0 while its table does not exist (the sink's table is made with its first batch).</summary>
    private static Task<long> CountAsync(string connection, string sql) => ClusterProbes.CountAsync(connection, sql, undefinedIsZero: true);

    private static Task SqlAsync(string connection, string sql) => ClusterProbes.ExecuteAsync(connection, sql);
}
