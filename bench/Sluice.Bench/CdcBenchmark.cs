using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Npgsql;
using Sluice.Connectors.Http;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using Sluice.Core;
using Sluice.Core.Recipes;
using StackExchange.Redis;
using Sluice.Recipes.TestServers;
using Sluice.Core.IO;

namespace Sluice.Bench;

public sealed record CdcBenchmarkOptions
{
    /// <summary>Inserts per second, the same for both pipelines.</summary>
    public double Rate { get; init; } = 1000;

    /// <summary>Length of each pipeline's measured window.</summary>
    public double Seconds { get; init; } = 30;

    /// <summary>Unmeasured streaming at the same rate before each window (JIT, tiering, connections).</summary>
    public double WarmUpSeconds { get; init; } = 15;
}

/// <summary>Where a run is, for a progress bar: <paramref name="Done"/> of <paramref name="Total"/> seconds of one pipeline.</summary>
public sealed record CdcBenchProgress(string Pipeline, double Done, double Total, string Status);

/// <summary>
/// <c>sluice bench cdc</c>: at a fixed insert rate, for the engagement-cdc recipe (three sinks) and for a plain one-sink
/// mirror, the CPU per change of the Sluice process against that of the Postgres WAL sender serving its slot, both
/// read from <c>/proc</c> over the same window; and, with three sinks, the time from a commit to its count in Redis.
/// </summary>
/// <remarks>
/// Sluice runs as its own process (<c>sluice run</c>), so its CPU is its own: the generator, the mock API and this
/// process's probes and counters are elsewhere. CPU per change divides by changes, so it holds on a machine shared with
/// other work far better than a rate does; the load average is recorded beside it all the same.
/// </remarks>
public static class CdcBenchmark
{
    private const string Name = "sluice_bench_cdc";
    private const string SinkDatabase = "sluice_bench_cdc_sink";
    private const long ProbeContent = 1_000_001;

    public static async Task<CdcBenchmarkReport> RunAsync(string root, CdcBenchmarkOptions options, IProgress<CdcBenchProgress> progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        Directory.CreateDirectory(root);
        var env = new BenchServers(
            PostgresConnectionOptions.FromEnvironment(),
            Environment.GetEnvironmentVariable("CLICKHOUSE_URL") is { Length: > 0 } c ? c : "http://127.0.0.1:8123",
            Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } r ? r : "redis://127.0.0.1:6379");
        await using var api = await MockEventsApi.StartAsync(new MockEventsApiOptions { Port = 0 }, TimeProvider.System, ct).ConfigureAwait(false);
        var recipes = Path.Combine(root, "recipes");
        var three = WriteEngagementRecipe(recipes, env, api.EventsUrl);
        var one = WriteOneSinkRecipe(recipes, env);
        var scenarios = new List<CdcScenarioResult>();
        try
        {
            var threeSinks = new Scenario("three sinks (engagement-cdc)", "ClickHouse + Redis + HTTP API, with enrichment", three, 1.25, ThreeSinks: true);
            scenarios.Add(await MeasureAsync(root, recipes, threeSinks, options, env, api, progress, ct).ConfigureAwait(false));
            var oneSink = new Scenario("one sink (mirror)", "postgres sink, mode: mirror (the table's current state, keyed event_id)", one, 0.75, ThreeSinks: false);
            scenarios.Add(await MeasureAsync(root, recipes, oneSink, options, env, api, progress, ct).ConfigureAwait(false));
        }
        finally
        {
            // An abandoned slot would keep WAL on the server forever.
            await ResetAsync(env, create: false, CancellationToken.None).ConfigureAwait(false);
        }

        return new CdcBenchmarkReport(MachineInfo.Describe(), DateTime.UtcNow, options, scenarios);
    }

    private sealed record BenchServers(PostgresConnectionOptions Pg, string ClickHouseUrl, string RedisUrl)
    {
        public PostgresConnectionOptions Bench => Pg.WithDatabase(Name);
    }

    /// <summary>One pipeline to measure; the three-sink one also measures commit-to-Redis latency (Redis is among its sinks).</summary>
    private sealed record Scenario(string Title, string Sinks, string Folder, double Target, bool ThreeSinks);

    private static async Task<CdcScenarioResult> MeasureAsync(
        string root, string recipes, Scenario scenario, CdcBenchmarkOptions options, BenchServers env, MockEventsApi api, IProgress<CdcBenchProgress> progress, CancellationToken ct)
    {
        var total = options.WarmUpSeconds + options.Seconds;
        void Report(double done, string status) => progress.Report(new CdcBenchProgress(scenario.Title, Math.Min(done, total), total, status));
        Report(0, "resetting database, slot and sinks");
        await ResetAsync(env, create: true, ct).ConfigureAwait(false);
        await new Recipes.Generators.EngagementGenerator(env.Bench).SetupAsync(Path.Combine(scenario.Folder, "schema.sql"), ct).ConfigureAwait(false);
        var before = api.Stats().DistinctIds;
        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(env.RedisUrl)).ConfigureAwait(false);
        using var http = new HttpClient();
        await using var db = await OpenAsync(env.Bench, ct).ConfigureAwait(false);
        await using var sinkDb = await OpenAsync(env.Pg.WithDatabase(SinkDatabase), ct).ConfigureAwait(false);
        var sinks = new SinkCounter(scenario.ThreeSinks, redis, http, env.ClickHouseUrl, api, before, sinkDb);

        Report(0, "starting sluice run");
        using var sluice = Child.Start(["run", scenario.Folder, "--data", Path.Combine(root, "data-" + Path.GetFileName(scenario.Folder)), "--port", "0"]);
        var walSender = await WaitStreamingAsync(db, sluice, ct).ConfigureAwait(false);
        var counter = new InsertCounter(db);

        // One generator for warm-up and window: a new one would start with a cold connection and an unprepared statement.
        var start = await counter.CountAsync(ct).ConfigureAwait(false);
        var generating = GenerateAsync(recipes, options.Rate, total, ct);
        // The generator's clock starts with its first insert, after its process has started (seconds on a busy machine).
        var starting = Stopwatch.StartNew();
        while (await counter.CountAsync(ct).ConfigureAwait(false) == start)
        {
            Alive(sluice, generating);
            if (generating.IsCompleted || starting.Elapsed > TimeSpan.FromMinutes(1)) { throw new SluiceException("bench: the generator inserted nothing within a minute."); }
            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < options.WarmUpSeconds)
        {
            await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(options.WarmUpSeconds - clock.Elapsed.TotalSeconds, 0.01, 1)), ct).ConfigureAwait(false);
            Alive(sluice, generating);
            Report(clock.Elapsed.TotalSeconds, $"warm-up (not measured): inserted {await counter.CountAsync(ct).ConfigureAwait(false):N0}");
        }

        // The window runs from here until every change inserted by then and until the generator stops is in every sink:
        // both processes have then done all their work for those changes, whatever the lag on a busy machine.
        var delivered0 = await sinks.LeastAsync(ct).ConfigureAwait(false);
        var inserted0 = await counter.CountAsync(ct).ConfigureAwait(false);
        var firstId = counter.LastId;
        var wal0 = await WalPositionAsync(db, ct).ConfigureAwait(false);
        var sluiceCpu0 = ProcessCpu.Read(sluice.Id);
        var walCpu0 = ProcessCpu.Read(walSender);
        var window = Stopwatch.StartNew();
        var load = new List<double> { LoadAverage.OneMinute() };
        using var stopProbes = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await using var probeDb = await OpenAsync(env.Bench, ct).ConfigureAwait(false);
        var probing = scenario.ThreeSinks ? ProbeAsync(probeDb, redis.GetDatabase(), stopProbes.Token) : Task.FromResult(new List<double>());
        while (!generating.IsCompleted)
        {
            await Task.WhenAny(generating, Task.Delay(1000, ct)).ConfigureAwait(false);
            Alive(sluice, generating);
            if (probing.IsFaulted) { await probing.ConfigureAwait(false); }
            var inserted = await counter.CountAsync(ct).ConfigureAwait(false) - inserted0;
            var delivered = await sinks.LeastAsync(ct).ConfigureAwait(false) - delivered0;
            load.Add(LoadAverage.OneMinute());
            Report(options.WarmUpSeconds + window.Elapsed.TotalSeconds, $"measuring: inserted {inserted:N0}, delivered {delivered:N0}, lag {inserted - delivered:N0}");
        }

        // Probes only while the generator inserts: the latency is the one at the fixed rate.
        await stopProbes.CancelAsync().ConfigureAwait(false);
        var latencies = await probing.ConfigureAwait(false);
        await generating.ConfigureAwait(false);
        var all = await counter.CountAsync(ct).ConfigureAwait(false);
        var lastId = counter.LastId;
        Report(total, "draining: waiting for every insert in every sink");
        while (await sinks.LeastAsync(ct).ConfigureAwait(false) < all)
        {
            Alive(sluice, null);
            if (window.Elapsed > TimeSpan.FromSeconds(options.Seconds) + TimeSpan.FromMinutes(2))
            {
                throw new SluiceException($"bench: {scenario.Title}: the sinks did not reach the {all:N0} inserted events within 2 min after the inserts stopped ({await sinks.DescribeAsync(ct).ConfigureAwait(false)}).");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        var sluiceCpu1 = ProcessCpu.Read(sluice.Id);
        var walCpu1 = ProcessCpu.Read(walSender);
        var windowSeconds = window.Elapsed.TotalSeconds;
        var walBytes = await WalPositionAsync(db, ct).ConfigureAwait(false) - wal0;
        if (await WalSenderPidAsync(db, ct).ConfigureAwait(false) != walSender)
        {
            throw new SluiceException("bench: Sluice's replication connection changed during the window (a reconnect); its WAL sender's CPU cannot be compared. Run again.");
        }

        var rowsPerTransaction = await sinks.RowsPerTransactionAsync(firstId, lastId, ct).ConfigureAwait(false);
        await sluice.StopAsync().ConfigureAwait(false);
        latencies.Sort();
        return new CdcScenarioResult(
            scenario.Title, scenario.Sinks, scenario.Target, windowSeconds, all - inserted0, all - delivered0, inserted0 - delivered0, rowsPerTransaction, walBytes,
            ProcessCpu.Seconds(sluiceCpu0, sluiceCpu1), ProcessCpu.Seconds(walCpu0, walCpu1), load.Min(), load.Max(),
            latencies.Count == 0 ? null : new Latency(latencies.Count, Percentile(latencies, 0.5), Percentile(latencies, 0.99), latencies[^1]));
    }

    /// <summary>The server's WAL position in bytes: the whole cluster's WAL, which the WAL sender reads (and skips where it is not its database's).</summary>
    private static async Task<long> WalPositionAsync(NpgsqlConnection db, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint", db);
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>A stopped Sluice or generator is an error of the run, said at once with what it printed.</summary>
    private static void Alive(Child sluice, Task<long>? generating)
    {
        if (sluice.HasExited)
        {
            throw new SluiceException($"bench: sluice run stopped during the benchmark: {Tail(sluice.Stderr + sluice.Stdout)}");
        }

        if (generating is { IsFaulted: true }) { generating.GetAwaiter().GetResult(); }
    }

    private static string Tail(string text) => text.Length <= 2000 ? text : text[^2000..];

    /// <summary>Waits for Sluice to hold its slot, and returns the pid of the WAL sender serving it.</summary>
    private static async Task<int> WaitStreamingAsync(NpgsqlConnection db, Child sluice, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            Alive(sluice, null);
            if (await WalSenderPidAsync(db, ct).ConfigureAwait(false) is { } pid) { return pid; }
            if (clock.Elapsed > TimeSpan.FromMinutes(2)) { throw new SluiceException($"bench: Sluice did not open its replication slot '{Name}' within 2 min: {Tail(sluice.Stderr + sluice.Stdout)}"); }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The slot's active WAL sender (a <c>walsender</c> backend): the process that decodes the stream for Sluice.</summary>
    private static async Task<int?> WalSenderPidAsync(NpgsqlConnection db, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT a.pid FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1 AND a.backend_type = 'walsender'", db);
        cmd.Parameters.AddWithValue(Name);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is int pid ? pid : null;
    }

    private static async Task<NpgsqlConnection> OpenAsync(PostgresConnectionOptions options, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(options.ConnectionString("sluice-bench"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        return connection;
    }

    /// <summary>Every 100 ms, one insert and the time from its commit (the INSERT's return) until Redis counts it.</summary>
    private static async Task<List<double>> ProbeAsync(NpgsqlConnection db, IDatabase redis, CancellationToken stop)
    {
        var latencies = new List<double>();
        var key = $"bench:cdc:content:count:{ProbeContent}";
        long seen = (long?)await redis.StringGetAsync(key).ConfigureAwait(false) ?? 0;
        await using var insert = new NpgsqlCommand($"INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES ({ProbeContent}, 1, 'probe', 1000, 'bench')", db);
        while (!stop.IsCancellationRequested)
        {
            // Not cancelled mid-way: a probe that is committed is also waited for, or the next one's count would be off.
            await insert.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            var committed = Stopwatch.StartNew();
            seen++;
            while ((long?)await redis.StringGetAsync(key).ConfigureAwait(false) < seen)
            {
                if (committed.Elapsed > TimeSpan.FromSeconds(30)) { throw new SluiceException("bench: a probe event did not reach Redis within 30 s."); }
                await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
            }

            latencies.Add(committed.Elapsed.TotalMilliseconds);
            // A random pause (50-150 ms, 100 on average): a fixed one after each arrival would probe at the same phase of
            // the reader's batch_linger every time (one probe a batch) and report a latency that depends on that phase.
            try { await Task.Delay(Random.Shared.Next(50, 151), stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
        }

        return latencies;
    }

    /// <summary>
    /// Rows in the source table. A whole <c>count(*)</c>, not a range above the last key seen: the probes insert from
    /// another session, so keys do not become visible in order. At a fixed rate of a few thousand a second the table
    /// stays small enough for that to cost little.
    /// </summary>
    private sealed class InsertCounter(NpgsqlConnection db)
    {
        /// <summary>The highest key at the last look.</summary>
        public long LastId { get; private set; }

        public async Task<long> CountAsync(CancellationToken ct)
        {
            await using var cmd = new NpgsqlCommand("SELECT count(*), coalesce(max(event_id), 0) FROM engagement_events", db);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            LastId = reader.GetInt64(1);
            return reader.GetInt64(0);
        }
    }

    /// <summary>Events delivered: with three sinks the least of ClickHouse's rows, Redis's counts and the API's distinct ids; with one, the mirror's rows (the generator only inserts).</summary>
    private sealed class SinkCounter(bool threeSinks, ConnectionMultiplexer redis, HttpClient http, string clickhouseUrl, MockEventsApi api, long apiBefore, NpgsqlConnection sinkDb)
    {
        public async Task<long> LeastAsync(CancellationToken ct)
        {
            if (!threeSinks) { return await MirrorRowsAsync(ct).ConfigureAwait(false); }
            var (clickhouse, inRedis, inApi) = await ThreeAsync(ct).ConfigureAwait(false);
            return Math.Min(clickhouse, Math.Min(inRedis, inApi));
        }

        public async Task<string> DescribeAsync(CancellationToken ct)
        {
            if (!threeSinks) { return $"mirror: {await MirrorRowsAsync(ct).ConfigureAwait(false):N0}"; }
            var (clickhouse, inRedis, inApi) = await ThreeAsync(ct).ConfigureAwait(false);
            return $"clickhouse {clickhouse:N0}, redis {inRedis:N0}, api {inApi:N0}";
        }

        /// <summary>Rows per transaction among the window's inserts: their rows over their distinct commit positions in a sink.</summary>
        public async Task<double> RowsPerTransactionAsync(long afterId, long lastId, CancellationToken ct)
        {
            var range = $"WHERE event_id > {afterId.ToString(CultureInfo.InvariantCulture)} AND event_id <= {lastId.ToString(CultureInfo.InvariantCulture)}";
            if (threeSinks)
            {
                var parts = (await ClickHouseAsync($"SELECT count(), uniqExact(_lsn) FROM {Name}.events_enriched {range}", ct).ConfigureAwait(false)).Split('\t');
                return double.Parse(parts[0], CultureInfo.InvariantCulture) / Math.Max(1, double.Parse(parts[1], CultureInfo.InvariantCulture));
            }

            await using var cmd = new NpgsqlCommand($"SELECT count(*)::float8 / greatest(count(DISTINCT _lsn), 1) FROM mirror.engagement_events {range}", sinkDb);
            return (double)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }

        private async Task<long> MirrorRowsAsync(CancellationToken ct)
        {
            // The sink creates its table with the first batch.
            await using var cmd = new NpgsqlCommand("SELECT CASE WHEN to_regclass('mirror.engagement_events') IS NULL THEN 0 ELSE (SELECT count(*) FROM mirror.engagement_events) END", sinkDb);
            try
            {
                return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                return 0;
            }
        }

        private async Task<(long ClickHouse, long Redis, long Api)> ThreeAsync(CancellationToken ct)
        {
            long inRedis = 0;
            var keys = new List<RedisKey>();
            await foreach (var k in redis.GetServers()[0].KeysAsync(pattern: "bench:cdc:content:count:*").WithCancellation(ct).ConfigureAwait(false)) { keys.Add(k); }
            foreach (var value in await redis.GetDatabase().StringGetAsync(keys.ToArray()).ConfigureAwait(false)) { inRedis += (long?)value ?? 0; }
            long inClickHouse;
            try
            {
                inClickHouse = long.Parse(await ClickHouseAsync($"SELECT count() FROM {Name}.events_enriched", ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException)
            {
                inClickHouse = 0; // the sink creates its table with the first batch
            }

            return (inClickHouse, inRedis, api.Stats().DistinctIds - apiBefore);
        }

        private async Task<string> ClickHouseAsync(string sql, CancellationToken ct)
        {
            using var content = new StringContent(sql);
            using var response = await http.PostAsync(clickhouseUrl, content, ct).ConfigureAwait(false);
            var text = (await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)).Trim();
            return response.IsSuccessStatusCode ? text : throw new HttpRequestException($"ClickHouse: {text}");
        }
    }

    /// <summary>Runs <c>sluice generate engagement-cdc</c> at a fixed rate as a separate process; returns how many events it inserted.</summary>
    private static async Task<long> GenerateAsync(string recipes, double rate, double seconds, CancellationToken ct)
    {
        var exe = Environment.ProcessPath!;
        var info = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") { info.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location); }
        foreach (var a in new[] { "generate", "engagement-cdc", "--rate", Invariant(rate), "--duration", Invariant(seconds) }) { info.ArgumentList.Add(a); }
        info.Environment["SLUICE_RECIPES"] = recipes;
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        var text = await output.ConfigureAwait(false);
        var done = text.Split('\n').LastOrDefault(l => l.StartsWith("done: inserted ", StringComparison.Ordinal))
            ?? throw new SluiceException($"bench: the generator failed ({process.ExitCode}): {await error.ConfigureAwait(false)}");
        return long.Parse(done["done: inserted ".Length..].Split(' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>The shipped engagement-cdc recipe on the benchmark's database, slot, ClickHouse database, Redis prefix and mock API.</summary>
    private static string WriteEngagementRecipe(string recipes, BenchServers env, Uri api)
    {
        var shipped = Path.Combine(RecipeLoader.RecipesRoot, "engagement-cdc");
        var folder = Path.Combine(recipes, "engagement-cdc");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(shipped, "schema.sql"), Path.Combine(folder, "schema.sql"));
        var yaml = File.ReadAllText(Path.Combine(shipped, "recipe.yaml"));
        var edited = yaml
            .Replace("\"${PGDATABASE:-sluice}\"", $"\"{Name}\"", StringComparison.Ordinal)
            .Replace("publication: sluice_engagement", $"publication: {Name}", StringComparison.Ordinal)
            .Replace("slot: sluice_engagement", $"slot: {Name}", StringComparison.Ordinal)
            .Replace("database: engagement", $"database: {Name}", StringComparison.Ordinal)
            .Replace("key_prefix: \"${SLUICE_KEY_PREFIX:-}\"", "key_prefix: \"bench:cdc:\"", StringComparison.Ordinal)
            .Replace("\"${CLICKHOUSE_URL:-http://127.0.0.1:8123}\"", $"\"{env.ClickHouseUrl}\"", StringComparison.Ordinal)
            .Replace("\"${REDIS_URL:-redis://127.0.0.1:6379}\"", $"\"{env.RedisUrl}\"", StringComparison.Ordinal)
            .Replace("\"${ENGAGEMENT_API_URL:-http://127.0.0.1:8099/events}\"", $"\"{api}\"", StringComparison.Ordinal);
        if (edited.Contains("sluice_engagement", StringComparison.Ordinal) || !edited.Contains($"slot: {Name}", StringComparison.Ordinal)
            || !edited.Contains("key_prefix: \"bench:cdc:\"", StringComparison.Ordinal))
        {
            // The recipe changed shape: the benchmark would otherwise stream the demo's slot, or count Redis keys it never wrote.
            throw new SluiceException($"bench: recipes/engagement-cdc/recipe.yaml no longer has the lines the benchmark rewrites (database, publication, slot, Redis key prefix); update CdcBenchmark.WriteEngagementRecipe.");
        }

        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), edited);
        return folder;
    }

    /// <summary>The plainest CDC pipeline: the same source and table kept as a mirror (its current state) in one PostgreSQL sink.</summary>
    private static string WriteOneSinkRecipe(string recipes, BenchServers env)
    {
        var folder = Path.Combine(recipes, "cdc-one-sink");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(RecipeLoader.RecipesRoot, "engagement-cdc", "schema.sql"), Path.Combine(folder, "schema.sql"));
        var sink = env.Pg.WithDatabase(SinkDatabase).ConnectionString("sluice").Replace("'", "''", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $$"""
            name: cdc-one-sink
            description: sluice bench cdc's one-sink pipeline, engagement_events mirrored into PostgreSQL.
            pipelines:
              cdc:
                source:
                  type: postgres_cdc
                  connection: { database: "{{Name}}" }
                  publication: {{Name}}
                  slot: {{Name}}
                  tables:
                    engagement_events: { on_update: emit, on_delete: emit }
                  snapshot: true
                  batch_rows: 10000
                  status_interval: 5s
                  heartbeat: 10s
                  slot_busy_timeout: 30s
                sinks:
                  - type: postgres
                    connection: '{{sink}}'
                    schema: mirror
                    mode: mirror
            """);
        return folder;
    }

    private static async Task ResetAsync(BenchServers env, bool create, CancellationToken ct)
    {
        await using (var admin = await OpenAsync(env.Pg, ct).ConfigureAwait(false))
        {
            for (var i = 0; i < 50; i++)
            {
                // The pipeline's session may take a moment to let go of the slot.
                await using var active = new NpgsqlCommand($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{Name}' AND active", admin);
                if ((long)(await active.ExecuteScalarAsync(ct).ConfigureAwait(false))! == 0) { break; }
                await Task.Delay(200, ct).ConfigureAwait(false);
            }

            foreach (var sql in new[]
            {
                $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{Name}' AND NOT active",
                $"DROP DATABASE IF EXISTS {Name} WITH (FORCE)",
                $"DROP DATABASE IF EXISTS {SinkDatabase} WITH (FORCE)",
                create ? $"CREATE DATABASE {Name}" : "SELECT 1",
                create ? $"CREATE DATABASE {SinkDatabase}" : "SELECT 1",
            })
            {
                await using var cmd = new NpgsqlCommand(sql, admin);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }

        // Pooled connections to the dropped databases are dead; the next scenario must not be handed one.
        NpgsqlConnection.ClearAllPools();
        using var http = new HttpClient();
        using (var drop = new StringContent($"DROP DATABASE IF EXISTS {Name}"))
        {
            (await http.PostAsync(env.ClickHouseUrl, drop, ct).ConfigureAwait(false)).Dispose();
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(env.RedisUrl)).ConfigureAwait(false);
        var db = redis.GetDatabase();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: "bench:cdc:*").WithCancellation(ct).ConfigureAwait(false)) { await db.KeyDeleteAsync(key).ConfigureAwait(false); }
    }

    private static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);
}
