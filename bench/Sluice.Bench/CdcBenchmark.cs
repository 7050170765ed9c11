using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Connectors.Http;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using Sluice.Core;
using Sluice.Core.Hosting;
using Sluice.Core.Recipes;
using StackExchange.Redis;

namespace Sluice.Bench;

public sealed record CdcBenchmarkReport(
    string Machine, double Seconds, double ReferenceBefore, double ReferenceAfter, long Inserted, double InsertRate, double DeliveredRate,
    long LagFirstHalf, long LagEnd, double DrainSeconds, double LatencyRate, int Probes, double P50Ms, double P99Ms, double MaxMs)
{
    /// <summary>The higher of the two reference runs: the insert rate on this machine moves a lot between runs, and the ratio must not flatter Sluice.</summary>
    public double ReferenceRate => Math.Max(ReferenceBefore, ReferenceAfter);

    /// <summary>
    /// What the pipeline kept up with: the insert rate only while every sink delivered as fast; when the generator ran
    /// ahead of the sinks (the lag grew), the delivered rate is the one sustained.
    /// </summary>
    public double SustainedRate => Math.Min(InsertRate, DeliveredRate);

    public double Ratio => SustainedRate / ReferenceRate;

    /// <summary>The lag grew over the second half by more than a tenth of what was inserted in it.</summary>
    public bool LagGrowing => LagEnd - LagFirstHalf > 0.1 * (Inserted / 2.0);

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench cdc ({DateTime.UtcNow:yyyy-MM-dd})");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Inserts: `sluice generate engagement-cdc` in a separate process (multi-row INSERT ... unnest, 500 rows per statement), {Seconds:0} s per phase, the throughput phase after 10 s of unmeasured streaming; Postgres, ClickHouse, Redis and the mock API on the same machine.");
        sb.AppendLine();
        sb.AppendLine("| measure | Sluice running | reference (same client, no Sluice, same run) | ratio | target |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| sustained rate, every event through enrichment to ClickHouse + Redis + API (the lower of inserted and delivered) | {SustainedRate:N0} events/s: inserted {InsertRate:N0}/s ({Inserted:N0} events), delivered {DeliveredRate:N0}/s | {ReferenceRate:N0} inserts/s (the higher of {ReferenceBefore:N0} before and {ReferenceAfter:N0} after the Sluice phases) | {Ratio:N2}x | >= 0.5x (and >= 20,000/s if the reference allows) |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| lag (events inserted, not yet in every sink) | {LagFirstHalf:N0} at half time, {LagEnd:N0} at the end ({(LagGrowing ? "growing" : "not growing")}); drained {DrainSeconds:N1} s after the inserts stopped | | | not growing |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| commit -> visible in Redis at {LatencyRate:N0} inserts/s ({Probes} probes) | p50 {P50Ms:N0} ms, p99 {P99Ms:N0} ms, max {MaxMs:N0} ms | | | p99 < 500 ms |");
        return sb.ToString();
    }
}

/// <summary>
/// <c>sluice bench cdc</c>: the reference is the insert rate the generator reaches against the same Postgres with no
/// Sluice; then the same generator runs while the engagement-cdc pipeline streams, enriches and writes to ClickHouse,
/// Redis and the mock API in this process, sampling the lag each second; last, at a fixed rate, probe events measure
/// the time from a commit to its count being visible in Redis.
/// </summary>
public static class CdcBenchmark
{
    private const string Name = "sluice_bench_cdc";
    private const long ProbeContent = 1_000_001;

    public static async Task<CdcBenchmarkReport> RunAsync(string root, double seconds, double latencyRate, TextWriter log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        Directory.CreateDirectory(root);
        var pg = PostgresConnectionOptions.FromEnvironment();
        var bench = pg.WithDatabase(Name);
        var clickhouseUrl = Environment.GetEnvironmentVariable("CLICKHOUSE_URL") is { Length: > 0 } c ? c : "http://127.0.0.1:8123";
        var redisUrl = Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } r ? r : "redis://127.0.0.1:6379";
        await ResetAsync(pg, clickhouseUrl, redisUrl, create: true, ct).ConfigureAwait(false);
        try
        {
            return await MeasureAsync(root, seconds, latencyRate, log, bench, clickhouseUrl, redisUrl, ct).ConfigureAwait(false);
        }
        finally
        {
            // An abandoned slot would keep WAL on the server forever.
            await ResetAsync(pg, clickhouseUrl, redisUrl, create: false, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(10);

    private static async Task<CdcBenchmarkReport> MeasureAsync(
        string root, double seconds, double latencyRate, TextWriter log, PostgresConnectionOptions bench, string clickhouseUrl, string redisUrl, CancellationToken ct)
    {
        await using var api = await MockEventsApi.StartAsync(new MockEventsApiOptions { Port = 0 }, TimeProvider.System, ct).ConfigureAwait(false);
        var recipes = Path.Combine(root, "recipes");
        var folder = WriteRecipe(recipes, clickhouseUrl, redisUrl, api.EventsUrl);
        await new Generators.EngagementGenerator(bench).SetupAsync(Path.Combine(folder, "schema.sql"), ct).ConfigureAwait(false);

        await log.WriteLineAsync($"reference: generator alone for {seconds:0} s ...").ConfigureAwait(false);
        var reference = await GenerateAsync(recipes, ["--rate", "0", "--duration", Invariant(seconds)], ct).ConfigureAwait(false) / seconds;
        await log.WriteLineAsync($"  {reference:N0} inserts/s").ConfigureAwait(false);

        using var services = new EngineServices(new DataDirectory(Path.Combine(root, "data")), TimeProvider.System, NullLoggerFactory.Instance);
        var recipe = new RecipeLoader(Components.Create()).Load(folder);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(redisUrl)).ConfigureAwait(false);
        await using var db = new NpgsqlConnection(bench.ConnectionString("sluice-bench"));
        await db.OpenAsync(ct).ConfigureAwait(false);
        using var http = new HttpClient();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var host = new RecipeHost(recipe, services);
        await using (host.ConfigureAwait(false))
        {
            var running = Task.Run(() => host.RunAsync(stop.Token), CancellationToken.None);
            var before = await CountAsync(db, ct).ConfigureAwait(false);
            await WaitDeliveredAsync(db, redis, http, clickhouseUrl, api, before, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false);

            // Unmeasured: the snapshot above ran other code than streaming does; this compiles and tiers the streaming
            // path first, so the measured phase is of a running instance, not of a process still in the JIT.
            await log.WriteLineAsync($"warm-up: generator at full speed for {WarmUp.TotalSeconds:0} s with Sluice streaming (not measured) ...").ConfigureAwait(false);
            await GenerateAsync(recipes, ["--rate", "0", "--duration", Invariant(WarmUp.TotalSeconds)], ct).ConfigureAwait(false);
            var counter = await InsertCounter.StartAsync(db, ct).ConfigureAwait(false);
            before = counter.Count;
            await WaitDeliveredAsync(db, redis, http, clickhouseUrl, api, before, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false);

            await log.WriteLineAsync($"throughput: generator at full speed for {seconds:0} s with Sluice streaming ...").ConfigureAwait(false);
            var generating = GenerateAsync(recipes, ["--rate", "0", "--duration", Invariant(seconds)], ct);
            var clock = Stopwatch.StartNew();
            long lagHalf = 0, lagEnd = 0;
            while (!generating.IsCompleted)
            {
                await Task.WhenAny(generating, Task.Delay(1000, ct)).ConfigureAwait(false);
                var inserted = await counter.CountAsync(ct).ConfigureAwait(false) - before;
                var sinks = await SinkCountsAsync(redis, http, clickhouseUrl, api, ct).ConfigureAwait(false);
                var delivered = sinks.Least - before;
                var lag = inserted - delivered;
                await log.WriteLineAsync($"  t={clock.Elapsed.TotalSeconds:0}s inserted {inserted:N0} delivered {delivered:N0} lag {lag:N0} (behind: clickhouse {inserted + before - sinks.ClickHouse:N0}, redis {inserted + before - sinks.Redis:N0}, api {inserted + before - sinks.Api:N0})").ConfigureAwait(false);
                if (clock.Elapsed.TotalSeconds <= seconds / 2) { lagHalf = lag; }
                lagEnd = lag;
            }

            var generated = await generating.ConfigureAwait(false);
            var generatedSeconds = clock.Elapsed.TotalSeconds;
            var deliveredAtEnd = await DeliveredAsync(redis, http, clickhouseUrl, api, ct).ConfigureAwait(false) - before;
            var total = await CountAsync(db, ct).ConfigureAwait(false);
            var drain = Stopwatch.StartNew();
            await WaitDeliveredAsync(db, redis, http, clickhouseUrl, api, total, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
            var drainSeconds = drain.Elapsed.TotalSeconds;

            await log.WriteLineAsync($"latency: generator at {latencyRate:N0}/s, probe events every 100 ms ...").ConfigureAwait(false);
            var background = GenerateAsync(recipes, ["--rate", Invariant(latencyRate), "--duration", Invariant(seconds)], ct);
            var latencies = await ProbeAsync(db, redis.GetDatabase(), background, ct).ConfigureAwait(false);
            await background.ConfigureAwait(false);
            await stop.CancelAsync().ConfigureAwait(false);
            try { await running.ConfigureAwait(false); } catch (OperationCanceledException) { }

            // The reference again, Sluice stopped: one run of it alone moves by half from one minute to the next here.
            await log.WriteLineAsync($"reference again: generator alone for {seconds:0} s ...").ConfigureAwait(false);
            var referenceAfter = await GenerateAsync(recipes, ["--rate", "0", "--duration", Invariant(seconds)], ct).ConfigureAwait(false) / seconds;
            await log.WriteLineAsync($"  {referenceAfter:N0} inserts/s").ConfigureAwait(false);

            latencies.Sort();
            double Percentile(double p) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(p * latencies.Count) - 1)];
            return new CdcBenchmarkReport(
                MachineInfo.Describe(), seconds, reference, referenceAfter, generated, generated / generatedSeconds, deliveredAtEnd / generatedSeconds,
                lagHalf, lagEnd, drainSeconds, latencyRate, latencies.Count, Percentile(0.5), Percentile(0.99), latencies.Count == 0 ? double.NaN : latencies[^1]);
        }
    }

    private static async Task<List<double>> ProbeAsync(NpgsqlConnection db, IDatabase redis, Task background, CancellationToken ct)
    {
        var latencies = new List<double>();
        var key = $"bench:cdc:content:count:{ProbeContent}";
        long seen = (long?)await redis.StringGetAsync(key).ConfigureAwait(false) ?? 0;
        await using var insert = new NpgsqlCommand($"INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES ({ProbeContent}, 1, 'probe', 1000, 'bench')", db);
        while (!background.IsCompleted)
        {
            await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            var committed = Stopwatch.StartNew();
            seen++;
            while ((long?)await redis.StringGetAsync(key).ConfigureAwait(false) < seen)
            {
                if (committed.Elapsed > TimeSpan.FromSeconds(30)) { throw new SluiceException("bench: a probe event did not reach Redis within 30 s."); }
                await Task.Delay(1, ct).ConfigureAwait(false);
            }

            latencies.Add(committed.Elapsed.TotalMilliseconds);
            await Task.Delay(100, ct).ConfigureAwait(false);
        }

        return latencies;
    }

    /// <summary>
    /// Counts the rows inserted since the last look only (an index range on the key): a full <c>count(*)</c> of a table
    /// of millions each second cost the machine about 8% of its CPU, which the reference phase does not pay. Exact
    /// because the one generator commits its statements one after the other, so keys become visible in order.
    /// </summary>
    private sealed class InsertCounter(NpgsqlConnection db, long count, long lastId)
    {
        /// <summary>Rows in the table at the last look.</summary>
        public long Count => count;

        public static async Task<InsertCounter> StartAsync(NpgsqlConnection db, CancellationToken ct)
        {
            await using var cmd = new NpgsqlCommand("SELECT count(*), coalesce(max(event_id), 0) FROM engagement_events", db);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            return new InsertCounter(db, reader.GetInt64(0), reader.GetInt64(1));
        }

        public async Task<long> CountAsync(CancellationToken ct)
        {
            await using var cmd = new NpgsqlCommand("SELECT count(*), coalesce(max(event_id), $1) FROM engagement_events WHERE event_id > $1", db);
            cmd.Parameters.AddWithValue(lastId);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            count += reader.GetInt64(0);
            lastId = reader.GetInt64(1);
            return count;
        }
    }

    private static async Task<long> CountAsync(NpgsqlConnection db, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM engagement_events", db);
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>Events in every sink: the least of ClickHouse's rows, Redis's distinct count and the API's distinct ids.</summary>
    private static async Task<long> DeliveredAsync(ConnectionMultiplexer redis, HttpClient http, string clickhouseUrl, MockEventsApi api, CancellationToken ct) =>
        (await SinkCountsAsync(redis, http, clickhouseUrl, api, ct).ConfigureAwait(false)).Least;

    private sealed record SinkCounts(long ClickHouse, long Redis, long Api)
    {
        public long Least => Math.Min(ClickHouse, Math.Min(Redis, Api));
    }

    private static async Task<SinkCounts> SinkCountsAsync(ConnectionMultiplexer redis, HttpClient http, string clickhouseUrl, MockEventsApi api, CancellationToken ct)
    {
        var server = redis.GetServers()[0];
        long inRedis = 0;
        var keys = new List<RedisKey>();
        await foreach (var k in server.KeysAsync(pattern: "bench:cdc:content:count:*").WithCancellation(ct).ConfigureAwait(false)) { keys.Add(k); }
        foreach (var value in await redis.GetDatabase().StringGetAsync(keys.ToArray()).ConfigureAwait(false)) { inRedis += (long?)value ?? 0; }
        long inClickHouse;
        try
        {
            using var content = new StringContent($"SELECT count() FROM {Name}.events_enriched");
            using var response = await http.PostAsync(clickhouseUrl, content, ct).ConfigureAwait(false);
            inClickHouse = response.IsSuccessStatusCode ? long.Parse((await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture) : 0;
        }
        catch (HttpRequestException)
        {
            inClickHouse = 0;
        }

        return new SinkCounts(inClickHouse, inRedis, api.Stats().DistinctIds);
    }

    private static async Task WaitDeliveredAsync(NpgsqlConnection db, ConnectionMultiplexer redis, HttpClient http, string clickhouseUrl, MockEventsApi api, long expected, TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (await DeliveredAsync(redis, http, clickhouseUrl, api, ct).ConfigureAwait(false) < expected)
        {
            if (clock.Elapsed > timeout) { throw new SluiceException($"bench: the sinks did not reach {expected} events within {timeout.TotalMinutes:0} min."); }
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Runs <c>sluice generate engagement-cdc</c> as a separate process and returns how many events it inserted.</summary>
    private static async Task<long> GenerateAsync(string recipes, string[] args, CancellationToken ct)
    {
        var exe = Environment.ProcessPath!;
        var info = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") { info.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location); }
        info.ArgumentList.Add("generate");
        info.ArgumentList.Add("engagement-cdc");
        foreach (var a in args) { info.ArgumentList.Add(a); }
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

    private static string WriteRecipe(string recipes, string clickhouseUrl, string redisUrl, Uri api)
    {
        var shipped = Path.Combine(RecipeLoader.RecipesRoot, "engagement-cdc");
        var folder = Path.Combine(recipes, "engagement-cdc");
        Directory.CreateDirectory(folder);
        File.Copy(Path.Combine(shipped, "schema.sql"), Path.Combine(folder, "schema.sql"));
        var yaml = File.ReadAllText(Path.Combine(shipped, "recipe.yaml"))
            .Replace("\"${PGDATABASE:-sluice}\"", $"\"{Name}\"", StringComparison.Ordinal)
            .Replace("publication: sluice_engagement", $"publication: {Name}", StringComparison.Ordinal)
            .Replace("slot: sluice_engagement", $"slot: {Name}", StringComparison.Ordinal)
            .Replace("database: engagement", $"database: {Name}", StringComparison.Ordinal)
            .Replace("key_prefix: \"\"", "key_prefix: \"bench:cdc:\"", StringComparison.Ordinal)
            .Replace("\"${CLICKHOUSE_URL:-http://127.0.0.1:8123}\"", $"\"{clickhouseUrl}\"", StringComparison.Ordinal)
            .Replace("\"${REDIS_URL:-redis://127.0.0.1:6379}\"", $"\"{redisUrl}\"", StringComparison.Ordinal)
            .Replace("\"${ENGAGEMENT_API_URL:-http://127.0.0.1:8099/events}\"", $"\"{api}\"", StringComparison.Ordinal)
            // The mock API runs on this machine; the recipe's 50 requests/s would cap the benchmark at 25,000 events/s.
            .Replace("rate_limit: 50", "rate_limit: 1000", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), yaml);
        return folder;
    }

    private static async Task ResetAsync(PostgresConnectionOptions pg, string clickhouseUrl, string redisUrl, bool create, CancellationToken ct)
    {
        await using (var admin = new NpgsqlConnection(pg.ConnectionString("sluice-bench")))
        {
            await admin.OpenAsync(ct).ConfigureAwait(false);
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
                create ? $"CREATE DATABASE {Name}" : "SELECT 1",
            })
            {
                await using var cmd = new NpgsqlCommand(sql, admin);
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }

        using var http = new HttpClient();
        using (var drop = new StringContent($"DROP DATABASE IF EXISTS {Name}"))
        {
            (await http.PostAsync(clickhouseUrl, drop, ct).ConfigureAwait(false)).Dispose();
        }

        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(redisUrl)).ConfigureAwait(false);
        var db = redis.GetDatabase();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: "bench:cdc:*").WithCancellation(ct).ConfigureAwait(false)) { await db.KeyDeleteAsync(key).ConfigureAwait(false); }
    }

    private static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);
}
