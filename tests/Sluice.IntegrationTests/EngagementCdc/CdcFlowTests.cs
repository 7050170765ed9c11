using System.Globalization;
using System.Text.Json;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.EngagementCdc;

public sealed class CdcFlowTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120); // a process start alone took 55 s at load 100

    [Fact]
    public async Task Snapshot_and_stream_reach_ClickHouse_Redis_and_the_API_once_each_with_the_enrichment_and_bad_input_handled()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        // Before the first start: read by the slot's snapshot.
        await scenario.InsertAsync(150, seed: 1);
        await using var run = scenario.Start(engine);
        await scenario.WaitForAllSinksAsync(Patience);

        // Streamed: ordinary events, and every kind of awkward input.
        await scenario.InsertAsync(300, rowsPerStatement: 7, seed: 2);
        var nullDuration = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (1, 5, 'play', NULL, 'web') RETURNING event_id");
        var zeroLength = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (21, 5, 'play', 3000, 'web') RETURNING event_id");
        var nullLength = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (22, 5, 'play', 3000, 'web') RETURNING event_id");
        var unknown = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (424242, 5, 'play', 3000, 'web') RETURNING event_id");
        var nullContent = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (NULL, 5, 'play', 3000, 'web') RETURNING event_id");
        var before = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (5, 5, 'play', 60000, 'web') RETURNING event_id");
        await scenario.ExecuteAsync("UPDATE content SET length_seconds = 600, content_type = 'movie' WHERE content_id = 5");
        var after = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (5, 5, 'play', 60000, 'web') RETURNING event_id");
        await scenario.ExecuteAsync("ALTER TABLE engagement_events ADD COLUMN campaign text");
        var withColumn = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device, campaign) VALUES (2, 5, 'play', 1000, 'web', 'spring') RETURNING event_id");
        var large = await scenario.ScalarAsync<long>($"INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (3, 5, 'play', 1000, repeat('x', 3000000)) RETURNING event_id");
        await scenario.InsertAsync(50, seed: 3);

        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();

        async Task<string> Row(long id) => await scenario.ClickHouseAsync(
            $"SELECT concat(ifNull(toString(engagement_seconds), 'NULL'), '|', ifNull(toString(engagement_pct), 'NULL'), '|', ifNull(content_type, 'NULL'), '|', toString(content_id)) FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {id}");
        (await Row(nullDuration)).ShouldBe("NULL|NULL|article|1");
        (await Row(zeroLength)).ShouldBe("3|NULL|video|21");
        (await Row(nullLength)).ShouldBe("3|NULL|article|22");
        (await Row(unknown)).ShouldBe("3|NULL|NULL|424242");
        (await Row(nullContent)).ShouldBe("3|NULL|NULL|0");
        (await Row(before)).ShouldBe("60|0.2|podcast|5");
        (await Row(after)).ShouldBe("60|0.1|movie|5");
        (await scenario.ClickHouseAsync($"SELECT campaign FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {withColumn}")).ShouldBe("spring");
        (await scenario.ClickHouseAsync($"SELECT length(device) FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {large}")).ShouldBe("3000000");

        var redis = await scenario.RedisAsync();
        var last = JsonDocument.Parse((string)(await redis.StringGetAsync($"{scenario.RedisPrefix}content:last:5"))!).RootElement;
        last.GetProperty("event_id").GetInt64().ShouldBe(await scenario.ScalarAsync<long>("SELECT event_id FROM engagement_events WHERE content_id = 5 ORDER BY event_ts DESC, event_id DESC LIMIT 1"));
        last.GetProperty("content_type").GetString().ShouldBe("movie");
        last.GetProperty("length_seconds").GetInt64().ShouldBe(600);
        (await redis.KeyTimeToLiveAsync($"{scenario.RedisPrefix}content:last:5")).ShouldNotBeNull().TotalMinutes.ShouldBeInRange(55, 60);
        var window = await redis.SortedSetRangeByScoreWithScoresAsync($"{scenario.RedisPrefix}top:content:10m");
        window.Sum(e => e.Score).ShouldBe(await scenario.ScalarAsync<long>("SELECT count(*) FROM engagement_events WHERE content_id IS NOT NULL AND event_ts > now() - interval '9 minutes'"));
        (await redis.KeyTimeToLiveAsync($"{scenario.RedisPrefix}top:content:10m")).ShouldNotBeNull().TotalSeconds.ShouldBeInRange(100, 120);
        var minute = await scenario.ScalarAsync<string>("SELECT to_char(max(event_ts) AT TIME ZONE 'UTC', 'YYYYMMDDHH24MI') FROM engagement_events");
        var bucket = $"{scenario.RedisPrefix}top:content:bucket:{minute}";
        (await redis.KeyTimeToLiveAsync(bucket)).ShouldNotBeNull().TotalMinutes.ShouldBeInRange(13, 15);
    }

    [Fact]
    public async Task Backfill_over_data_already_streamed_changes_no_count()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        await using (var run = scenario.Start(engine))
        {
            await scenario.InsertAsync(400, rowsPerStatement: 50, seed: 4);
            await scenario.WaitForAllSinksAsync(Patience);
        }

        // Through the command line, as a user runs it.
        var from = DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var to = DateTimeOffset.UtcNow.AddMinutes(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        using var backfill = SluiceProcess.Start(engine.DataRoot, scenario.ProcessEnvironment, "backfill", "engagement-cdc/backfill", "--from", from, "--to", to);
        (await backfill.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, backfill.Stderr);
        backfill.Stdout.ShouldContain("400 rows of public.engagement_events");
        // Progress with the real total of the range (counted first), so the bar's time remaining means something.
        backfill.Stderr.ShouldContain("backfill engagement-cdc/backfill: 0/400 (rows) 0%");
        backfill.Stderr.ShouldContain("backfill engagement-cdc/backfill: 400/400 (rows, up to event_id ");

        await scenario.AssertExactAsync();
        (await scenario.ClickHouseCountAsync()).ShouldBe(400);
        (await scenario.RedisTotalAsync()).ShouldBe(400);
        scenario.Api.Stats().DistinctIds.ShouldBe(400);
    }

    [Fact]
    public async Task Backfill_writes_what_the_stream_never_delivered_to_the_chosen_sinks()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => y.Replace("    key: event_id\n    batch_rows: 10000\n", "    key: event_id\n    batch_rows: 70\n    sinks: [clickhouse, redis]\n", StringComparison.Ordinal));
        using var engine = new Engine();
        await scenario.InsertAsync(200, seed: 5);
        var mid = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        await scenario.InsertAsync(100, seed: 6);

        var recipe = scenario.LoadRecipe();
        var outcome = await new JobRunner(engine.Services).RunAsync(recipe.Job("backfill")!, new JobRequest(mid, Trigger: "backfill") { FromTime = mid.AddHours(-1), ToTime = mid }, CancellationToken.None);

        outcome.RowsIn.ShouldBe(200, $"{outcome.Message}; postgres has {await scenario.ScalarAsync<long>($"SELECT count(*) FROM engagement_events WHERE event_ts < '{mid.UtcDateTime:O}'")} before {mid:O}, times {await scenario.ScalarAsync<string>("SELECT string_agg(DISTINCT event_ts::text, ', ') FROM engagement_events")}");
        (await scenario.ClickHouseCountAsync()).ShouldBe(200);
        (await scenario.RedisTotalAsync()).ShouldBe(200);
        scenario.Api.Stats().Received.ShouldBe(0);
    }
}
