using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.IO;
using Sluice.Core.Recipes;
using Sluice.Hosting;
using Sluice.Serving.Auth;

namespace Sluice.Bench;

public sealed record ClusterBenchmarkOptions
{
    /// <summary>Events sent in each cost window (single process, then the cluster), paced at <see cref="Rate"/>.</summary>
    public long Events { get; init; } = 60_000;

    /// <summary>Events per second offered in the cost windows, the same to both modes.</summary>
    public double Rate { get; init; } = 2_000;

    /// <summary>Measured window of each throughput phase, in seconds.</summary>
    public double Seconds { get; init; } = 30;

    /// <summary>Unmeasured load before each window (JIT, connections, consumers).</summary>
    public double WarmUpSeconds { get; init; } = 15;

    /// <summary>
    /// CPUs each worker may use in the throughput phases (a cgroup quota); 0: no quota. 0.15 by default: three workers
    /// and the three NATS nodes serving them must fit on the machine beside the load generators, or the machine, not
    /// the design, sets the rate (on 2 cores at 0.5 each the whole box saturated at about 12,000 events/s, NATS alone
    /// taking about one core: docs/BENCHMARKS.md).
    /// </summary>
    public double Share { get; init; } = 0.15;

    /// <summary>
    /// <c>SLUICE_CLUSTER_MAX_PENDING</c> of the throughput phases, per worker: messages not yet processed past which
    /// the workers refuse (503, Retry-After 5 s), so the load generators, honouring it, offer what the workers sustain.
    /// About five seconds of one worker's work at 0.15 CPU (a message is a request's events of one partition, about 6 of
    /// a batch of 100 over 16 partitions): enough that the backlog does not run dry while refused clients wait.
    /// </summary>
    public int MaxPendingPerWorker { get; init; } = 800;

    /// <summary>Workers of the cluster in the cost window, and the largest throughput phase (1 .. this).</summary>
    public int Workers { get; init; } = 3;

    /// <summary>Requests in flight per worker in the throughput phases (batches of 100).</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>A run of seconds for a smoke test: every figure, no meaningful number.</summary>
    public static ClusterBenchmarkOptions Quick => new() { Events = 2_000, Rate = 1_000, Seconds = 3, WarmUpSeconds = 4 };
}

/// <summary>
/// <c>sluice bench cluster</c>: HTTP ingest to PostgreSQL (tenant-analytics with a keyed postgres sink) in one process
/// and on a cluster of workers over the benchmark's own three-node JetStream cluster (R3) and a shared metadata store;
/// (a) the same paced load to both: CPU per event of the Sluice processes (NATS counted apart), end-to-end latency (sent
/// until its row is in PostgreSQL) and ack latency; (b) the rate 1, 2, .. N workers land, each held to a fixed CPU share
/// by a cgroup quota, as a ratio to one worker; with the metadata store's writes per worker.
/// </summary>
public static class ClusterBenchmark
{
    private const int Batch = 100;
    private const string Tenant = "bench";

    public static async Task<ClusterBenchmarkReport> RunAsync(
        string root, ClusterBenchmarkOptions options, TextWriter log, CancellationToken ct, Func<string, IProgress<JobProgress>>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (options.Workers < 1 || options.Events < 1 || options.Rate <= 0 || options.Seconds <= 0 || options.WarmUpSeconds < 0 || options.Share < 0)
        {
            throw new SluiceException("bench cluster: --workers, --events, --rate and --seconds must be above 0, --warmup and --share 0 or more.");
        }

        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        Directory.CreateDirectory(root);
        var steps = progress?.Invoke("bench cluster");
        var total = (options.Workers == 1 ? 2 : 3) + options.Workers;
        var step = 0;
        void Step(string what) => steps?.Report(new JobProgress(step, total, what));

        var pg = PostgresConnectionOptions.FromEnvironment();
        var cluster = "bench" + Guid.NewGuid().ToString("N")[..8];
        using var nats = new BenchNatsCluster(Path.Combine(root, "nats"));
        var env = new Dictionary<string, string?>
        {
            ["SLUICE_CLUSTER_POSTGRES"] = pg.ConnectionString("sluice-worker"), ["SLUICE_CLUSTER_NAME"] = cluster, ["SLUICE_CLUSTER_NATS"] = null,
            ["SLUICE_CLUSTER_PARTITIONS"] = null, ["SLUICE_CLUSTER_REPLICAS"] = null, ["SLUICE_CLUSTER_ORDER"] = null, ["SLUICE_WORKER_ID"] = null,
        };
        var run = new Run(root, pg, cluster, nats, env, options, log, ct);
        try
        {
            // One worker is the same work in one process as the single-process mode; N workers add N-1 processes' fixed costs.
            var costs = new List<CostResult>();
            foreach (var workers in new[] { 0, 1, options.Workers }.Distinct())
            {
                Step(workers == 0 ? "single process: paced load" : $"{workers} worker{(workers == 1 ? "" : "s")}: paced load");
                costs.Add(await run.CostAsync(workers).ConfigureAwait(false));
                step++;
            }

            var scaling = new List<ThroughputResult>();
            for (var n = 1; n <= options.Workers; n++)
            {
                Step($"{n} worker{(n == 1 ? "" : "s")}: throughput");
                scaling.Add(await run.ThroughputAsync(n).ConfigureAwait(false));
                step++;
            }

            Step("done");
            return new ClusterBenchmarkReport(MachineInfo.Describe(), DateTime.UtcNow, options, costs, scaling, run.QuotaHow);
        }
        finally
        {
            await run.DropAsync($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE").ConfigureAwait(false);
        }
    }

    private sealed class Run(
        string root, PostgresConnectionOptions pg, string cluster, BenchNatsCluster nats, Dictionary<string, string?> env, ClusterBenchmarkOptions options, TextWriter log, CancellationToken ct)
    {
        private string? _clusterToken;

        public string QuotaHow { get; private set; } = "none (--share 0)";

        /// <summary>The same paced load and probes to one process (<paramref name="workers"/> 0) or to a cluster of that many workers.</summary>
        public async Task<CostResult> CostAsync(int workers)
        {
            var tag = workers == 0 ? "single" : $"cluster{workers}";
            var mode = workers == 0 ? "single process" : $"cluster, {workers} worker{(workers == 1 ? "" : "s")}";
            await log.WriteLineAsync($"{mode}: starting ...").ConfigureAwait(false);
            var (servers, urls, token, sink) = await StartAsync(tag, workers, quotas: null).ConfigureAwait(false);
            try
            {
                var n = urls.Count;
                var warmUp = TimeSpan.FromSeconds(options.WarmUpSeconds);
                if (warmUp > TimeSpan.Zero)
                {
                    await log.WriteLineAsync($"{mode}: warm-up, {options.Rate:N0} events/s for {warmUp.TotalSeconds:N0} s (not measured) ...").ConfigureAwait(false);
                    var warm = await Task.WhenAll(urls.Select(u => IngestBenchmark.LoadAsync(u, token, Batch, 4, warmUp, options.Rate / n, ct))).ConfigureAwait(false);
                    await WaitRowsAsync(sink, warm.Sum(l => l.Events), servers).ConfigureAwait(false);
                }

                var rows0 = await sink.CountAsync(ct).ConfigureAwait(false);
                var meta0 = await MetadataWritesAsync().ConfigureAwait(false);
                var cpu0 = Read(servers.Select(s => s.Id));
                var nats0 = workers == 0 ? [] : Read(nats.Pids);
                var load = new List<double> { LoadAverage.OneMinute() };
                var window = Stopwatch.StartNew();
                var seconds = TimeSpan.FromSeconds(options.Events / options.Rate);
                await log.WriteLineAsync($"{mode}: {options.Events:N0} events at {options.Rate:N0}/s with end-to-end probes ...").ConfigureAwait(false);
                using var stopProbes = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var probing = ProbeAsync(urls, token, sink, stopProbes.Token);
                var loads = await Task.WhenAll(urls.Select(u => IngestBenchmark.LoadAsync(u, token, Batch, 4, seconds, options.Rate / n, ct))).ConfigureAwait(false);
                load.Add(LoadAverage.OneMinute());
                await stopProbes.CancelAsync().ConfigureAwait(false);
                var (endToEnd, probeAcks) = await probing.ConfigureAwait(false);
                var sent = loads.Sum(l => l.Events);
                await WaitRowsAsync(sink, rows0 + sent + endToEnd.Count, servers).ConfigureAwait(false);
                var sluiceCpu = Seconds(cpu0, Read(servers.Select(s => s.Id)));
                var natsCpu = workers == 0 ? 0 : Seconds(nats0, Read(nats.Pids));
                var elapsed = window.Elapsed.TotalSeconds;
                var meta = (await MetadataWritesAsync().ConfigureAwait(false)).Minus(meta0, elapsed);
                load.Add(LoadAverage.OneMinute());
                var landed = sent + endToEnd.Count;
                var result = new CostResult(mode, workers, landed, elapsed, sluiceCpu, natsCpu,
                    Percentiles.Of(endToEnd), Percentiles.Of(probeAcks), new Percentiles((int)loads.Sum(l => l.Requests), loads.Max(l => l.P50Ms), loads.Max(l => l.P99Ms)),
                    workers == 0 ? null : meta, load.Min(), load.Max());
                await log.WriteLineAsync($"  {result.SluiceUsPerEvent:N1} us CPU/event (NATS {result.NatsUsPerEvent:N1} us), end to end p50 {result.EndToEnd.P50Ms:N0} ms p99 {result.EndToEnd.P99Ms:N0} ms").ConfigureAwait(false);
                return result;
            }
            finally
            {
                foreach (var s in servers) { s.Dispose(); }
                await DropAsync($"DROP SCHEMA IF EXISTS {sink.Schema} CASCADE").ConfigureAwait(false);
            }
        }

        /// <summary><paramref name="workers"/> workers, each held to the CPU share, loaded as fast as they answer: the rate their sink lands over the window.</summary>
        public async Task<ThroughputResult> ThroughputAsync(int workers)
        {
            var tag = $"x{workers}";
            var quotas = options.Share > 0
                ? Enumerable.Range(0, workers).Select(i => CpuQuota.Create($"sluice-bench-{Environment.ProcessId}-{tag}-w{i}", options.Share)).ToList()
                : [];
            if (quotas.Count > 0) { QuotaHow = quotas[0].How; }
            await log.WriteLineAsync($"{workers} worker(s), {(options.Share > 0 ? $"{options.Share:0.##} CPU each" : "no CPU quota")}: starting ...").ConfigureAwait(false);
            var maxPending = options.MaxPendingPerWorker * workers;
            env["SLUICE_CLUSTER_MAX_PENDING"] = maxPending.ToString(CultureInfo.InvariantCulture);
            (List<Child> Servers, List<Uri> Urls, string Token, SinkRows Sink) started;
            try
            {
                started = await StartAsync(tag, workers, quotas).ConfigureAwait(false);
            }
            finally
            {
                env["SLUICE_CLUSTER_MAX_PENDING"] = null;
            }

            var (servers, urls, token, sink) = started;
            try
            {
                var length = TimeSpan.FromSeconds(options.WarmUpSeconds + options.Seconds + 2);
                // Clients that honour Retry-After: past max_pending the workers refuse, and the load is what they sustain.
                var loading = Task.WhenAll(urls.Select(u => IngestBenchmark.LoadAsync(u, token, Batch, options.Concurrency, length, null, ct, honourRetryAfter: true)));
                await WaitAsync(TimeSpan.FromSeconds(options.WarmUpSeconds), servers, loading).ConfigureAwait(false);
                var backlog0 = await PendingAsync(urls[0]).ConfigureAwait(false);
                var rows0 = await sink.CountAsync(ct).ConfigureAwait(false);
                var meta0 = await MetadataWritesAsync().ConfigureAwait(false);
                var cpu0 = servers.Select(s => ProcessCpu.Read(s.Id)).ToList();
                var nats0 = Read(nats.Pids);
                var load = new List<double> { LoadAverage.OneMinute() };
                var window = Stopwatch.StartNew();
                await log.WriteLineAsync($"  measuring {options.Seconds:N0} s ...").ConfigureAwait(false);
                await WaitAsync(TimeSpan.FromSeconds(options.Seconds), servers, loading).ConfigureAwait(false);
                var rows1 = await sink.CountAsync(ct).ConfigureAwait(false);
                var backlog1 = await PendingAsync(urls[0]).ConfigureAwait(false);
                var elapsed = window.Elapsed.TotalSeconds;
                var cpu = servers.Select((s, i) => ProcessCpu.Seconds(cpu0[i], ProcessCpu.Read(s.Id))).ToList();
                var natsCpu = Seconds(nats0, Read(nats.Pids));
                var meta = (await MetadataWritesAsync().ConfigureAwait(false)).Minus(meta0, elapsed);
                load.Add(LoadAverage.OneMinute());
                var loads = await loading.ConfigureAwait(false);
                var result = new ThroughputResult(workers, options.Share, elapsed, rows1 - rows0, loads.Sum(l => l.EventsPerSecond), cpu, natsCpu, meta, load.Min(), load.Max())
                {
                    MaxPending = maxPending, BacklogStart = backlog0, BacklogEnd = backlog1, Refused = loads.Sum(l => l.Throttled),
                };
                await log.WriteLineAsync($"  landed {result.LandedPerSecond:N0} events/s, accepted {result.AcceptedPerSecond:N0}/s, backlog {backlog0:N0} -> {backlog1:N0} messages (max {maxPending:N0}), CPU per worker {string.Join(", ", cpu.Select(c => (c / elapsed).ToString("0.00", CultureInfo.InvariantCulture)))}").ConfigureAwait(false);
                return result;
            }
            finally
            {
                foreach (var s in servers) { s.Dispose(); }
                foreach (var q in quotas) { q.Dispose(); }
                await DropAsync($"DROP SCHEMA IF EXISTS {sink.Schema} CASCADE").ConfigureAwait(false);
            }
        }

        /// <summary>The recipe on a sink schema of its own, then one process (no workers) or the workers on a fresh JetStream cluster, healthy.</summary>
        private async Task<(List<Child> Servers, List<Uri> Urls, string Token, SinkRows Sink)> StartAsync(string tag, int workers, List<CpuQuota>? quotas)
        {
            // The run's own schema per phase (the cluster's random name in it): two runs at once never drop each other's.
            var sink = new SinkRows(pg, $"sluice_{cluster}_{tag}");
            await DropAsync($"DROP SCHEMA IF EXISTS {sink.Schema} CASCADE").ConfigureAwait(false);
            var recipe = WriteRecipe(Path.Combine(root, "recipes", tag), sink.Schema);
            var servers = new List<Child>();
            var urls = new List<Uri>();
            string token;
            try
            {
                if (workers == 0)
                {
                    var data = Path.Combine(root, tag);
                    using (var services = new EngineServices(new DataDirectory(data), TimeProvider.System, NullLoggerFactory.Instance))
                    {
                        token = new TokenStore(services.Metadata, services.Time).Create(Tenant, TokenRole.Writer, "bench").Token;
                    }

                    var port = LoopbackPort.Next();
                    urls.Add(new Uri($"http://127.0.0.1:{port}"));
                    servers.Add(Child.Start(["run", recipe, "--data", data, "--port", port.ToString(CultureInfo.InvariantCulture)]));
                }
                else
                {
                    await nats.StartFreshAsync(ct).ConfigureAwait(false);
                    env["SLUICE_CLUSTER_NATS"] = nats.Urls;
                    token = _clusterToken ??= await CreateClusterTokenAsync().ConfigureAwait(false);
                    for (var i = 0; i < workers; i++)
                    {
                        var port = LoopbackPort.Next();
                        urls.Add(new Uri($"http://127.0.0.1:{port}"));
                        servers.Add(Child.Start(["run", recipe, "--cluster", "--data", Path.Combine(root, $"{tag}-w{i}"), "--port", port.ToString(CultureInfo.InvariantCulture)],
                            env, quotas is { Count: > 0 } ? quotas[i].Procs : null));
                    }
                }

                for (var i = 0; i < servers.Count; i++) { await IngestBenchmark.WaitHealthyAsync(urls[i], servers[i], ct).ConfigureAwait(false); }
                return (servers, urls, token, sink);
            }
            catch
            {
                foreach (var s in servers) { s.Dispose(); }
                throw;
            }
        }

        /// <summary>The stream's messages not yet processed, as a worker last read them (its <c>sluice_cluster_pending_messages</c>; -1: unknown).</summary>
        private async Task<long> PendingAsync(Uri worker)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var text = await http.GetStringAsync(new Uri(worker, "/metrics"), ct).ConfigureAwait(false);
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("sluice_cluster_pending_messages{", StringComparison.Ordinal));
            return line is not null && double.TryParse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? (long)value : -1;
        }

        private async Task<string> CreateClusterTokenAsync()
        {
            using var create = Child.Start(["tokens", "create", "--role", "writer", "--tenant", Tenant, "--cluster", "--data", Path.Combine(root, "admin")], env);
            var code = await create.WaitAsync(TimeSpan.FromMinutes(2), ct).ConfigureAwait(false);
            var token = create.Stdout.Trim().Split('\n')[^1].Trim();
            return code == 0 && token.Length > 0 ? token : throw new SluiceException($"bench cluster: tokens create --cluster failed ({code}): {create.Stderr}");
        }

        /// <summary>tenant-analytics as shipped, its lake sink replaced by a postgres sink keyed as the cluster's idempotent sinks need.</summary>
        private string WriteRecipe(string folder, string schema)
        {
            var shipped = Path.Combine(RecipeLoader.RecipesRoot, "tenant-analytics");
            Directory.CreateDirectory(Path.Combine(folder, "schemas"));
            foreach (var file in Directory.GetFiles(Path.Combine(shipped, "schemas"))) { File.Copy(file, Path.Combine(folder, "schemas", Path.GetFileName(file)), true); }
            var yaml = File.ReadAllText(Path.Combine(shipped, "recipe.yaml"));
            const string lake = "      - type: lake ";
            var at = yaml.IndexOf(lake, StringComparison.Ordinal);
            var end = at < 0 ? -1 : yaml.IndexOf("        partition_by: event_ts\n", at, StringComparison.Ordinal);
            if (end < 0)
            {
                throw new SluiceException("bench cluster: recipes/tenant-analytics/recipe.yaml no longer has the lake sink the benchmark replaces; update ClusterBenchmark.WriteRecipe.");
            }

            end += "        partition_by: event_ts\n".Length;
            var connection = pg.ConnectionString("sluice").Replace("'", "''", StringComparison.Ordinal);
            var postgres = $"      - type: postgres\n        schema: {schema}\n        connection: '{connection}'\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]\n";
            File.WriteAllText(Path.Combine(folder, "recipe.yaml"), yaml[..at] + postgres + yaml[end..]);
            return folder;
        }

        /// <summary>Until the sink holds <paramref name="expected"/> rows; a stopped server is an error at once.</summary>
        private async Task WaitRowsAsync(SinkRows sink, long expected, List<Child> servers)
        {
            var clock = Stopwatch.StartNew();
            while (await sink.CountAsync(ct).ConfigureAwait(false) < expected)
            {
                Alive(servers);
                if (clock.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new SluiceException($"bench cluster: the sink has {await sink.CountAsync(ct).ConfigureAwait(false):N0} of {expected:N0} accepted events 5 min after the load stopped.");
                }

                await Task.Delay(50, ct).ConfigureAwait(false);
            }
        }

        private async Task WaitAsync(TimeSpan time, List<Child> servers, Task loading)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < time)
            {
                Alive(servers);
                if (loading.IsFaulted) { await loading.ConfigureAwait(false); }
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp((time - clock.Elapsed).TotalSeconds, 0.01, 0.5)), ct).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// One event at a time to the servers in turn: its ack time, and the time from sending it until its row is in
        /// PostgreSQL. Random pauses of 50-150 ms, so the probes do not fall on the same phase of the batch linger each time.
        /// </summary>
        private async Task<(List<double> EndToEnd, List<double> Acks)> ProbeAsync(List<Uri> urls, string token, SinkRows sink, CancellationToken stop)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            await using var db = await sink.OpenAsync(ct).ConfigureAwait(false);
            var (endToEnd, acks) = (new List<double>(), new List<double>());
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var id = $"probe-{Guid.NewGuid():N}";
                var body = $"{{\"event_id\":\"{id}\",\"schema_version\":1,\"event_type\":\"page_view\",\"event_ts\":\"{DateTime.UtcNow:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}\",\"customer\":{{\"id\":\"p\"}}}}";
                var sent = Stopwatch.StartNew();
                using (var post = new HttpRequestMessage(HttpMethod.Post, new Uri(urls[i % urls.Count], "/v1/streams/ecommerce/events")) { Content = new StringContent(body, Encoding.UTF8, "application/json") })
                {
                    post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                    using var response = await http.SendAsync(post, ct).ConfigureAwait(false);
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        throw new SluiceException($"bench cluster: a probe got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                    }
                }

                acks.Add(sent.Elapsed.TotalMilliseconds);
                // Waited for even when the window closes: the row count the drain waits for includes every probe sent.
                while (!await sink.HasAsync(db, id, ct).ConfigureAwait(false))
                {
                    if (sent.Elapsed > TimeSpan.FromMinutes(1)) { throw new SluiceException($"bench cluster: probe {id} was not in PostgreSQL 60 s after its 202."); }
                    await Task.Delay(2, ct).ConfigureAwait(false);
                }

                endToEnd.Add(sent.Elapsed.TotalMilliseconds);
                try { await Task.Delay(Random.Shared.Next(50, 151), stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }

            return (endToEnd, acks);
        }

        /// <summary>Rows inserted, updated and deleted per table of the cluster's metadata schema so far (PostgreSQL's statistics).</summary>
        private async Task<MetadataWrites> MetadataWritesAsync()
        {
            await using var db = new NpgsqlConnection(pg.ConnectionString("sluice-bench"));
            await db.OpenAsync(ct).ConfigureAwait(false);
            // A backend reports its counts at most once a second; forcing ours costs nothing and theirs are read as they are.
            await using var cmd = new NpgsqlCommand("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE schemaname = $1", db);
            cmd.Parameters.AddWithValue($"sluice_meta_{cluster}");
            var tables = new Dictionary<string, long>(StringComparer.Ordinal);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) { tables[reader.GetString(0)] = reader.GetInt64(1); }
            return new MetadataWrites(0, tables);
        }

        public async Task DropAsync(string sql)
        {
            await using var db = new NpgsqlConnection(pg.ConnectionString("sluice-bench"));
            await db.OpenAsync(CancellationToken.None).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(sql, db);
            await cmd.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }

        private static void Alive(List<Child> servers)
        {
            foreach (var s in servers.Where(s => s.HasExited))
            {
                var text = s.Stderr + s.Stdout;
                throw new SluiceException($"bench cluster: a sluice process stopped during the benchmark: {(text.Length <= 2000 ? text : text[^2000..])}");
            }
        }

        private static List<ProcessCpu> Read(IEnumerable<int> pids) => pids.Select(ProcessCpu.Read).ToList();

        private static double Seconds(List<ProcessCpu> before, List<ProcessCpu> after) => before.Select((b, i) => ProcessCpu.Seconds(b, after[i])).Sum();
    }

    /// <summary>The postgres sink's events table.</summary>
    private sealed class SinkRows(PostgresConnectionOptions pg, string schema)
    {
        public string Schema => schema;

        public async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
        {
            var db = new NpgsqlConnection(pg.ConnectionString("sluice-bench"));
            await db.OpenAsync(ct).ConfigureAwait(false);
            return db;
        }

        public async Task<long> CountAsync(CancellationToken ct)
        {
            await using var db = await OpenAsync(ct).ConfigureAwait(false);
            // The sink creates its table with the first batch.
            await using var cmd = new NpgsqlCommand($"SELECT CASE WHEN to_regclass('{schema}.events') IS NULL THEN 0 ELSE (SELECT count(*) FROM {schema}.events) END", db);
            try
            {
                return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                return 0;
            }
        }

        public async Task<bool> HasAsync(NpgsqlConnection db, string eventId, CancellationToken ct)
        {
            await using var cmd = new NpgsqlCommand($"SELECT CASE WHEN to_regclass('{schema}.events') IS NULL THEN false ELSE EXISTS (SELECT 1 FROM {schema}.events WHERE tenant_id = '{Tenant}' AND event_id = $1) END", db);
            cmd.Parameters.AddWithValue(eventId);
            try
            {
                return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                return false;
            }
        }
    }
}
