using Npgsql;
using Sluice.Connectors.Http;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.TestServers;

namespace Sluice.IntegrationTests.EngagementCdc;

public sealed class CdcFaultTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_SIGKILL_mid_stream_and_a_restart_end_with_every_event_exactly_once_everywhere()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        await scenario.InsertAsync(500, seed: 10);
        using (var first = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
        {
            var inserting = Task.Run(async () =>
            {
                for (var i = 0; i < 40; i++) { await scenario.InsertAsync(50, rowsPerStatement: 5, seed: 100 + i); }
            });
            // Kill it while rows are flowing: some batches committed by some sinks, others in flight.
            await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() > 700, Patience, async () => $"clickhouse {await scenario.ClickHouseCountAsync()}\n{first.Stderr}");
            first.Kill();
            await inserting;
        }

        await scenario.InsertAsync(300, seed: 11);
        // Restarted at once: the slot may still be held by the killed process's server session for a moment.
        using var second = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
        (await scenario.PgCountAsync()).ShouldBe(2800);
        // Ctrl-C: a clean stop.
        (await second.StopAsync()).ShouldBe(0, second.Stderr);
        (second.Stdout + second.Stderr).ShouldContain("stopped cleanly");
        second.Stderr.ShouldNotContain("fail:");
    }

    [Fact]
    public async Task With_ClickHouse_stopped_Redis_and_the_API_keep_up_and_ClickHouse_catches_up_when_it_is_back()
    {
        await using var clickhouse = new ThrowawayClickHouse();
        await clickhouse.StartAsync();
        await using var scenario = await CdcScenario.CreateAsync(clickHouseUrl: clickhouse.Url);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(200, seed: 20);
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 200, Patience, async () => $"clickhouse {await scenario.ClickHouseCountAsync()}");

        await clickhouse.KillAsync();
        await scenario.InsertAsync(300, rowsPerStatement: 30, seed: 21);
        var expectedRedis = await scenario.ScalarAsync<long>("SELECT count(content_id) FROM engagement_events");
        await CdcScenario.WaitUntilAsync(async () => await scenario.RedisTotalAsync() == expectedRedis && scenario.Api.Stats().DistinctIds == 500, Patience,
            async () => $"redis {await scenario.RedisTotalAsync()}, api {scenario.Api.Stats()}");
        (await scenario.ClickHouseCountAsync()).ShouldBe(-1); // still down

        await clickhouse.StartAsync();
        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
        run.Task.IsCompleted.ShouldBeFalse();
    }

    [Fact]
    public async Task With_Redis_restarted_mid_stream_the_counts_stay_exact()
    {
        await using var redis = new ThrowawayRedis();
        await redis.StartAsync();
        await using var scenario = await CdcScenario.CreateAsync(redisUrl: redis.Url);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(200, seed: 30);
        await scenario.WaitForAllSinksAsync(Patience);

        await redis.KillAsync();
        await scenario.InsertAsync(300, rowsPerStatement: 30, seed: 31);
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 500, Patience, async () => $"clickhouse {await scenario.ClickHouseCountAsync()}");
        await Task.Delay(500);
        await redis.StartAsync();

        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
    }

    [Fact]
    public async Task An_API_failing_30_percent_of_calls_loses_nothing()
    {
        await using var scenario = await CdcScenario.CreateAsync(new MockEventsApiOptions { Port = 0, FailRate = 0.3, Seed = 7 },
            tweak: y => y.Replace("request_rows: 500", "request_rows: 20", StringComparison.Ordinal).Replace("retries: 5", "retries: 8", StringComparison.Ordinal));
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(600, rowsPerStatement: 40, seed: 40);

        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 600 && await Delivered(scenario, engine) == 600, Patience,
            async () => $"clickhouse {await scenario.ClickHouseCountAsync()}, api {scenario.Api.Stats()}, dead letters {engine.Services.DeadLetters.Count("http:")}");
        scenario.Api.Stats().Failed.ShouldBeGreaterThan(0);
        await ReplayAsync(scenario, engine);
        await scenario.AssertExactAsync();
    }

    [Fact]
    public async Task An_API_that_is_down_does_not_stall_the_other_sinks_and_its_dead_letters_are_replayed()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => y.Replace("retries: 5", "retries: 2", StringComparison.Ordinal));
        using var engine = new Engine();
        scenario.Api.Down = true;
        await using (var run = scenario.Start(engine))
        {
            await scenario.InsertAsync(300, rowsPerStatement: 30, seed: 50);
            var expectedRedis = await scenario.ScalarAsync<long>("SELECT count(content_id) FROM engagement_events");
            await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 300 && await scenario.RedisTotalAsync() == expectedRedis, Patience,
                async () => $"clickhouse {await scenario.ClickHouseCountAsync()}, redis {await scenario.RedisTotalAsync()}");
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending) > 0), Patience, () => Task.FromResult("no dead letters"));
            scenario.Api.Stats().DistinctIds.ShouldBe(0);
        }

        var letter = engine.Services.DeadLetters.List("http:", DeadLetterStore.Pending)[0];
        letter.Source.ShouldBe("http:engagement-cdc/api");
        letter.Reason.ShouldContain("HTTP 503");
        letter.Position.ShouldContain("event_id");
        scenario.Api.Down = false;
        var (code, output, error) = await RunCliAsync(scenario, engine, "dlq", "replay", "--all");
        code.ShouldBe(0, output + error);
        output.ShouldContain("0 still failing");
        engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending).ShouldBe(0);
        await scenario.AssertExactAsync();
    }

    [Fact]
    public async Task A_missing_slot_or_a_slot_re_created_behind_its_back_stops_the_source_with_a_clear_message()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        await scenario.InsertAsync(100, seed: 60);
        await using (var host = new Sluice.Hosting.RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            (await host.RunOnceAsync(CancellationToken.None)).ShouldBeGreaterThan(0);
        }

        await scenario.AssertExactAsync();
        await scenario.InsertAsync(50, seed: 61);
        await using (var host = new Sluice.Hosting.RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        await scenario.AssertExactAsync();
        (await scenario.PgCountAsync()).ShouldBe(150);

        await scenario.ExecuteAsync($"SELECT pg_drop_replication_slot('{scenario.Slot}')");
        await using (var host = new Sluice.Hosting.RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            var missing = await Should.ThrowAsync<SluiceException>(() => host.RunOnceAsync(CancellationToken.None));
            missing.Message.ShouldContain($"replication slot '{scenario.Slot}' is missing");
        }

        await scenario.ExecuteAsync($"SELECT pg_create_logical_replication_slot('{scenario.Slot}', 'pgoutput')");
        await scenario.InsertAsync(10, seed: 62);
        await scenario.ExecuteAsync("SELECT pg_switch_wal()");
        await using (var host = new Sluice.Hosting.RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            // The new slot starts after the last position this pipeline committed: the 10 rows in between were never sent.
            await scenario.ExecuteAsync($"SELECT pg_replication_slot_advance('{scenario.Slot}', pg_current_wal_lsn())");
            var moved = await Should.ThrowAsync<SluiceException>(() => host.RunOnceAsync(CancellationToken.None));
            moved.Message.ShouldContain("re-created or advanced by someone else");
        }
    }

    [Fact]
    public async Task A_replication_connection_cut_by_the_server_is_reconnected_and_nothing_is_lost()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(100, seed: 80);
        await scenario.WaitForAllSinksAsync(Patience);

        var inserting = Task.Run(async () =>
        {
            for (var i = 0; i < 20; i++) { await scenario.InsertAsync(20, rowsPerStatement: 4, seed: 200 + i); }
        });
        (await scenario.ScalarAsync<bool>($"SELECT coalesce(bool_or(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}' AND active"))
            .ShouldBeTrue("the source's server session was not found");
        await inserting;

        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
        (await scenario.PgCountAsync()).ShouldBe(500);
        run.Task.IsCompleted.ShouldBeFalse();
    }

    [Fact]
    public async Task An_idle_source_lets_the_slot_advance_past_unrelated_WAL()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.InsertAsync(20, seed: 70);
        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.ExecuteAsync("CREATE TABLE unrelated (id int); INSERT INTO unrelated SELECT generate_series(1, 1000)");
        var walAfter = await scenario.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text");

        await CdcScenario.WaitUntilAsync(
            async () => await scenario.ScalarAsync<bool>($"SELECT confirmed_flush_lsn >= '{walAfter}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'"),
            TimeSpan.FromSeconds(30),
            async () => $"slot at {await scenario.ScalarAsync<string>($"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'")}, WAL at {walAfter}");

        // Advancing over idle WAL did not skip anything that came after it.
        await scenario.InsertAsync(30, seed: 71);
        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
    }

    /// <summary>Events the API accepted plus events waiting in dead letters: together, everything.</summary>
    private static Task<long> Delivered(CdcScenario scenario, Engine engine)
    {
        var pending = engine.Services.DeadLetters.List("http:", DeadLetterStore.Pending, int.MaxValue);
        var inLetters = pending.Sum(l => System.Text.Json.JsonDocument.Parse(l.Payload!).RootElement.GetProperty("body").GetArrayLength());
        return Task.FromResult(scenario.Api.Stats().DistinctIds + inLetters);
    }

    private static async Task ReplayAsync(CdcScenario scenario, Engine engine)
    {
        if (engine.Services.DeadLetters.Count("http:", DeadLetterStore.Pending) == 0) { return; }
        var (code, output, error) = await RunCliAsync(scenario, engine, "dlq", "replay", "--all");
        code.ShouldBe(0, output + error);
    }

    private static async Task<(int Code, string Out, string Err)> RunCliAsync(CdcScenario scenario, Engine engine, params string[] args)
    {
        using var p = SluiceProcess.Start(engine.DataRoot, scenario.ProcessEnvironment, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Stdout, p.Stderr);
    }
}
