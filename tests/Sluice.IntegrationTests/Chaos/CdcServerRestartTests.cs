using System.Globalization;
using Npgsql;
using Sluice.Connectors.Http;
using Sluice.Core.DeadLetters;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.TestServers;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// engagement-cdc with a server stopped mid-stream and started again: the source's Postgres (SIGKILL: crash recovery,
/// the slot as of its last checkpoint) and the HTTP API (the process gone: connections refused). ClickHouse and Redis
/// stopped mid-stream are <see cref="CdcFaultTests"/>. After recovery every sink holds each source row exactly once.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class CdcServerRestartTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_source_postgres_killed_mid_stream_and_restarted_leaves_every_sink_exact()
    {
        await using var pg = new ThrowawayPostgres();
        await pg.StartAsync();
        await using var scenario = await CdcScenario.CreateAsync(postgres: pg.Options);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(200, seed: 90);
        await scenario.WaitForAllSinksAsync(Patience);

        // Rows committed in small transactions while the server is killed: some streamed, some not yet, the rest refused.
        var refused = 0;
        var inserting = Task.Run(async () =>
        {
            for (var i = 0; i < 30; i++)
            {
                try
                {
                    await scenario.InsertAsync(20, rowsPerStatement: 4, seed: 300 + i);
                }
                catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException)
                {
                    refused++;
                }
            }
        });
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() > 260, Patience, async () => $"clickhouse {await scenario.ClickHouseCountAsync()}");
        await pg.KillAsync();
        await inserting;
        await pg.StartAsync();
        NpgsqlConnection.ClearAllPools();

        await scenario.InsertAsync(100, seed: 91);
        await scenario.WaitForAllSinksAsync(Patience);
        await RecordAsync(scenario, nameof(The_source_postgres_killed_mid_stream_and_restarted_leaves_every_sink_exact), "postgres (source) SIGKILL mid-stream, restarted",
            $"{refused} of 30 insert statements refused while the server was down (not committed at the source: not sent)");
        await scenario.AssertExactAsync();
        run.Task.IsCompleted.ShouldBeFalse("the source reconnects; it does not stop the run");
    }

    [Fact]
    public async Task The_api_stopped_mid_stream_and_restarted_gets_every_event_once_the_dead_letters_are_replayed()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => y.Replace("retries: 5", "retries: 2", StringComparison.Ordinal));
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(200, seed: 95);
        await scenario.WaitForAllSinksAsync(Patience);

        // The API's process goes away: connections are refused, ClickHouse and Redis keep up, the API's batches end as dead letters.
        var port = scenario.Api.BaseUrl.Port;
        await scenario.Api.DisposeAsync();
        await scenario.InsertAsync(300, rowsPerStatement: 30, seed: 96);
        var withContent = await scenario.ScalarAsync<long>("SELECT count(content_id) FROM engagement_events");
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 500 && await scenario.RedisTotalAsync() == withContent
                && engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending) > 0, Patience,
            async () => $"clickhouse {await scenario.ClickHouseCountAsync()}, redis {await scenario.RedisTotalAsync()}, dead letters {engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending)}");

        await using var restarted = await MockEventsApi.StartAsync(new MockEventsApiOptions { Port = port }, TimeProvider.System, CancellationToken.None);
        await scenario.InsertAsync(100, seed: 97);
        using (var replay = SluiceProcess.Start(engine.DataRoot, scenario.ProcessEnvironment, "dlq", "replay", "--all"))
        {
            (await replay.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, replay.Stdout + replay.Stderr);
            replay.Stdout.ShouldContain("0 still failing");
        }

        var ids = await EventIdsAsync(scenario);
        await CdcScenario.WaitUntilAsync(() => Task.FromResult(ids.All(id => scenario.Api.Saw(id) || restarted.Saw(id))), Patience,
            () => Task.FromResult($"{ids.Count(id => !scenario.Api.Saw(id) && !restarted.Saw(id))} of {ids.Count} ids at neither API"));
        var both = ids.Count(id => scenario.Api.Saw(id) && restarted.Saw(id));
        var atApi = ids.Count(id => scenario.Api.Saw(id) || restarted.Saw(id));
        ChaosFigures.Record(nameof(The_api_stopped_mid_stream_and_restarted_gets_every_event_once_the_dead_letters_are_replayed), "engagement-cdc", "HTTP API stopped mid-stream, restarted, dead letters replayed",
            ids.Count, ids.Count, atApi, both, ids.Count - atApi, "API figures: ids at the API before or after its restart; duplicated = ids sent to both lifetimes (the same Idempotency-Key)");

        (await scenario.ClickHouseCountAsync()).ShouldBe(ids.Count);
        (await scenario.ClickHouseDistinctAsync()).ShouldBe(ids.Count);
        (await scenario.RedisCountsAsync()).OrderBy(p => p.Key).ShouldBe((await scenario.PgCountsAsync()).OrderBy(p => p.Key));
        engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending).ShouldBe(0);
        atApi.ShouldBe(ids.Count, "every event reached the API");
        both.ShouldBe(0, "nothing the first API acknowledged was sent again");
        run.Task.IsCompleted.ShouldBeFalse();
    }

    private static async Task<List<long>> EventIdsAsync(CdcScenario scenario)
    {
        var ids = new List<long>();
        await using var connection = new NpgsqlConnection(scenario.Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT event_id FROM engagement_events", connection);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) { ids.Add(r.GetInt64(0)); }
        return ids;
    }

    /// <summary>The figures of a scenario whose three sinks should each hold the source's rows once.</summary>
    internal static async Task RecordAsync(CdcScenario scenario, string test, string fault, string note)
    {
        var source = await scenario.PgCountAsync();
        var final = await scenario.ClickHouseCountAsync();
        var rows = long.Parse(await scenario.ClickHouseAsync($"SELECT count() FROM {scenario.ClickHouseDb}.events_enriched"), CultureInfo.InvariantCulture);
        var redisExtra = (await scenario.RedisTotalAsync()) - await scenario.ScalarAsync<long>("SELECT count(content_id) FROM engagement_events");
        var api = scenario.Api.Stats().DistinctIds;
        var lost = Math.Max(0, source - Math.Min(final, api));
        ChaosFigures.Record(test, "engagement-cdc", fault, source, source, final, Math.Max(0, redisExtra) + Math.Max(0, final - source),
            lost, $"{note}; ClickHouse rows before FINAL {rows} (replays collapsed by ReplacingMergeTree), API distinct ids {api}");
    }
}
