using Sluice.Recipes;
using System.Globalization;
using System.Net.Http;
using Npgsql;
using Sluice.Connectors.Http;
using Sluice.Connectors.Postgres;
using Sluice.Hosting;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using StackExchange.Redis;
using Sluice.Recipes.TestServers;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// One test's private world on the shared servers: its own Postgres database (tables + seeded content), slot and
/// publication, ClickHouse database, Redis key prefix and mock API, and a copy of the shipped recipe pointing at them
/// (timings shortened). Everything is dropped at the end.
/// </summary>
internal sealed class CdcScenario : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly TempFolder _folder = new("sluice-cdc");
    private ConnectionMultiplexer? _redis;

    private readonly PostgresConnectionOptions? _server;

    private CdcScenario(string id, MockEventsApi api, string clickHouseUrl, string redisUrl, PostgresConnectionOptions? server)
    {
        Id = id;
        Api = api;
        ClickHouseUrl = clickHouseUrl;
        RedisUrl = redisUrl;
        _server = server;
        Pg = (server ?? PostgresConnectionOptions.FromEnvironment()).WithDatabase(Database);
    }

    /// <summary>The server's admin connection: the shared server's, or the one of the server given to <see cref="CreateAsync"/>.</summary>
    private string AdminConnectionString => _server?.ConnectionString("sluice-test") ?? ServerSettings.PostgresConnectionString;

    public string Id { get; }

    public string Database => $"sluice_t4_{Id}";

    public string Slot => $"sluice_t4_{Id}";

    public string ClickHouseDb => $"t4_{Id}";

    public string RedisPrefix => $"t4{Id}:";

    public PostgresConnectionOptions Pg { get; }

    public MockEventsApi Api { get; }

    public string ClickHouseUrl { get; }

    public string RedisUrl { get; }

    public string RecipesRoot => _folder.Path;

    public string RecipeFolder => _folder.Sub("engagement-cdc");

    public string DataRoot => _folder.Sub("data");

    public static async Task<CdcScenario> CreateAsync(MockEventsApiOptions? api = null, string? clickHouseUrl = null, string? redisUrl = null, Func<string, string>? tweak = null,
        PostgresConnectionOptions? postgres = null)
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var mock = await MockEventsApi.StartAsync(api ?? new MockEventsApiOptions { Port = 0 }, TimeProvider.System, CancellationToken.None);
        var scenario = new CdcScenario(id, mock, clickHouseUrl ?? ServerSettings.ClickHouseUrl, redisUrl ?? ServerSettings.RedisUrl, postgres);
        await scenario.SetUpAsync(tweak);
        return scenario;
    }

    private async Task SetUpAsync(Func<string, string>? tweak)
    {
        await using (var admin = new NpgsqlConnection(AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        Directory.CreateDirectory(RecipeFolder);
        Directory.CreateDirectory(DataRoot);
        var shipped = TestPaths.Recipe("engagement-cdc");
        File.Copy(Path.Combine(shipped, "schema.sql"), Path.Combine(RecipeFolder, "schema.sql"));
        var yaml = await File.ReadAllTextAsync(Path.Combine(shipped, "recipe.yaml"));
        yaml = Replace(yaml, "\"${PGDATABASE:-sluice}\"", $"\"{Database}\"");
        if (_server is { } server)
        {
            yaml = Replace(yaml, $"{{ database: \"{Database}\" }}", $"{{ host: {server.Host}, port: {server.Port}, user: {server.User}, database: \"{Database}\" }}");
        }
        yaml = Replace(yaml, "publication: sluice_engagement", $"publication: {Slot}");
        yaml = Replace(yaml, "slot: sluice_engagement", $"slot: {Slot}");
        yaml = Replace(yaml, "database: engagement", $"database: {ClickHouseDb}");
        yaml = Replace(yaml, "key_prefix: \"${SLUICE_KEY_PREFIX:-}\"", $"key_prefix: \"{RedisPrefix}\"");
        yaml = Replace(yaml, "\"${CLICKHOUSE_URL:-http://127.0.0.1:8123}\"", $"\"{ClickHouseUrl}\"");
        yaml = Replace(yaml, "\"${REDIS_URL:-redis://127.0.0.1:6379}\"", $"\"{RedisUrl}\"");
        yaml = Replace(yaml, "\"${ENGAGEMENT_API_URL:-http://127.0.0.1:8099/events}\"", $"\"{Api.EventsUrl}\"");
        // Short timings, so fault tests stay short.
        yaml = Replace(yaml, "status_interval: 5s", "status_interval: 200ms");
        yaml = Replace(yaml, "heartbeat: 10s", "heartbeat: 1s");
        yaml = Replace(yaml, "retry_max_delay: 10s\n      - type: redis_realtime", "retry_max_delay: 500ms\n      - type: redis_realtime");
        yaml = Replace(yaml, "retry_delay: 200ms\n        retry_max_delay: 10s", "retry_delay: 20ms\n        retry_max_delay: 200ms");
        yaml = Replace(yaml, "breaker_duration: 5s", "breaker_duration: 500ms");
        yaml = Replace(yaml, "rate_limit: 50", "rate_limit: 1000");
        await File.WriteAllTextAsync(Path.Combine(RecipeFolder, "recipe.yaml"), tweak is null ? yaml : tweak(yaml));
        await new EngagementGenerator(Pg).SetupAsync(Path.Combine(RecipeFolder, "schema.sql"), CancellationToken.None);
    }

    private static string Replace(string text, string what, string with) =>
        text.Contains(what, StringComparison.Ordinal) ? text.Replace(what, with, StringComparison.Ordinal) : throw new InvalidOperationException($"the shipped recipe no longer contains '{what}'");

    public Sluice.Core.Recipes.Recipe LoadRecipe() => new Sluice.Core.Recipes.RecipeLoader(RecipeComponents.Create()).Load(RecipeFolder);

    /// <summary>Environment for a child <c>sluice</c> process: this scenario's recipes folder.</summary>
    public Dictionary<string, string> ProcessEnvironment => new(StringComparer.Ordinal) { ["SLUICE_RECIPES"] = RecipesRoot };

    public Task<long> InsertAsync(long events, int rowsPerStatement = 500, int? seed = null) =>
        new EngagementGenerator(Pg).RunAsync(new EngagementGeneratorOptions { Rate = 0, Limit = events, RowsPerStatement = rowsPerStatement, Seed = seed }, null, CancellationToken.None);

    public Task<T> ScalarAsync<T>(string sql) => PgTestDatabase.ScalarAsync<T>(Pg, sql);

    public Task ExecuteAsync(string sql) => PgTestDatabase.ExecuteAsync(Pg, sql);

    public Task<long> PgCountAsync() => ScalarAsync<long>("SELECT count(*) FROM engagement_events");

    public async Task<string> ClickHouseAsync(string sql, string? url = null)
    {
        using var content = new StringContent(sql);
        using var response = await Http.PostAsync(url ?? ClickHouseUrl, content);
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.ShouldBeTrue($"ClickHouse: {body}");
        return body.Trim();
    }

    public async Task<long> ClickHouseCountAsync()
    {
        try
        {
            return long.Parse(await ClickHouseAsync($"SELECT count() FROM {ClickHouseDb}.events_enriched FINAL"), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is HttpRequestException or ShouldAssertException)
        {
            return -1;
        }
    }

    public async Task<long> ClickHouseDistinctAsync() =>
        long.Parse(await ClickHouseAsync($"SELECT uniqExact(event_id) FROM {ClickHouseDb}.events_enriched"), CultureInfo.InvariantCulture);

    public async Task<IDatabase> RedisAsync()
    {
        _redis ??= await ConnectionMultiplexer.ConnectAsync(Connectors.Redis.RedisUrl.Parse(RedisUrl));
        return _redis.GetDatabase();
    }

    /// <summary>content:count:{id} for every content id seen in Postgres (unknown ids included).</summary>
    public async Task<Dictionary<long, long>> RedisCountsAsync()
    {
        var db = await RedisAsync();
        var ids = new List<long>();
        await using (var connection = new NpgsqlConnection(Pg.ConnectionString("sluice-test")))
        {
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT DISTINCT content_id FROM engagement_events WHERE content_id IS NOT NULL", connection);
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) { ids.Add(r.GetInt64(0)); }
        }

        var counts = new Dictionary<long, long>();
        foreach (var id in ids)
        {
            var value = await db.StringGetAsync($"{RedisPrefix}content:count:{id}");
            counts[id] = value.IsNull ? 0 : (long)value;
        }

        return counts;
    }

    public async Task<Dictionary<long, long>> PgCountsAsync()
    {
        var counts = new Dictionary<long, long>();
        await using var connection = new NpgsqlConnection(Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT content_id, count(*) FROM engagement_events WHERE content_id IS NOT NULL GROUP BY content_id", connection);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) { counts[r.GetInt64(0)] = r.GetInt64(1); }
        return counts;
    }

    public async Task<long> RedisTotalAsync() => (await RedisCountsAsync()).Values.Sum();

    /// <summary>Polls until the condition holds; fails with what was last seen.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<Task<string>> describe)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s: {await describe()}"); }
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until ClickHouse, Redis and the API all hold exactly Postgres's events.</summary>
    public async Task WaitForAllSinksAsync(TimeSpan timeout)
    {
        var expected = await PgCountAsync();
        var withContent = await ScalarAsync<long>("SELECT count(content_id) FROM engagement_events");
        await WaitUntilAsync(
            async () => await ClickHouseCountAsync() == expected && await RedisTotalAsync() == withContent && Api.Stats().DistinctIds == expected,
            timeout,
            async () => $"postgres {expected}, clickhouse {await ClickHouseCountAsync()}, redis {await RedisTotalAsync()}, api {Api.Stats()}");
    }

    /// <summary>The exact-once checks: row and id counts, per-content Redis counts, API ids.</summary>
    public async Task AssertExactAsync()
    {
        var expected = await PgCountAsync();
        (await ClickHouseCountAsync()).ShouldBe(expected);
        (await ClickHouseDistinctAsync()).ShouldBe(expected);
        (await RedisCountsAsync()).OrderBy(p => p.Key).ShouldBe((await PgCountsAsync()).OrderBy(p => p.Key));
        Api.Stats().DistinctIds.ShouldBe(expected);
    }

    /// <summary>Runs the recipe in this process until stopped.</summary>
    public PipelineRun Start(Engine engine) => new(new RecipeHost(LoadRecipe(), engine.Services));

    public async ValueTask DisposeAsync()
    {
        await Api.DisposeAsync();
        try
        {
            // Connected here if the test never was: the pipeline may have written keys all the same.
            await RedisAsync();
        }
        catch (RedisConnectionException)
        {
            // A throw-away server that is gone took its keys with it.
        }

        if (_redis is { IsConnected: true })
        {
            var server = _redis.GetServers().First();
            var db = _redis.GetDatabase();
            await foreach (var key in server.KeysAsync(pattern: RedisPrefix + "*")) { await db.KeyDeleteAsync(key); }
        }

        if (_redis is not null) { await _redis.DisposeAsync(); }

        try
        {
            await using var admin = new NpgsqlConnection(AdminConnectionString);
            await admin.OpenAsync();
            await PgTestDatabase.DropAsync(admin, Slot, Database);
            await ClickHouseAsync($"DROP DATABASE IF EXISTS {ClickHouseDb}", ServerSettings.ClickHouseUrl);
        }
        catch (Exception e) when (e is NpgsqlException or HttpRequestException or ShouldAssertException or TaskCanceledException)
        {
            // Best effort (a loaded ClickHouse may take longer than the client's timeout to drop a database): names are
            // unique per test, so leftovers never disturb another run.
        }

        _folder.Dispose();
    }
}

/// <summary>A recipe running in the test process, stopped (as Ctrl-C would) on dispose.</summary>
internal sealed class PipelineRun : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();

    public PipelineRun(RecipeHost host)
    {
        Host = host;
        Task = Task.Run(() => host.RunAsync(_stop.Token));
    }

    public RecipeHost Host { get; }

    public Task Task { get; }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    public async ValueTask DisposeAsync()
    {
        if (!Task.IsCompleted) { await StopAsync(); }
        await Host.DisposeAsync();
        _stop.Dispose();
    }
}
