using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// The slot is never a surprise: its lag is measured and moves, crossing a threshold turns health degraded with the
/// reason (and back once caught up), and heartbeats let the slot advance while the published tables are idle and
/// other tables are busy, without reaching the sinks.
/// </summary>
public sealed class CdcSlotMonitorTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120); // a process start alone took 55 s at load 100

    /// <summary>Checks every 200 ms; lag of more than 1 s is worth a warning; a stalled sink retries every 300 ms at most.</summary>
    private static string Watched(string yaml, string more = "") => yaml
        .Replace("slot_busy_timeout: 30s", "slot_busy_timeout: 30s\n      slot_check_interval: 200ms\n      lag_warn_seconds: 1" + more, StringComparison.Ordinal)
        .Replace("retry_max_delay: 10s", "retry_max_delay: 300ms", StringComparison.Ordinal);

    [Fact]
    public async Task Lag_is_measured_turns_health_degraded_with_the_reason_while_a_sink_is_stuck_and_clears_after_catch_up()
    {
        // ClickHouse through a forwarder: closing it stalls that sink (its writes are retried until they succeed).
        using var reserved = FreePort.Refusing(); // refuses while the forwarder is closed, and no other server takes it meanwhile
        var port = reserved.Port;
        var target = new Uri(ServerSettings.ClickHouseUrl);
        var forwarder = new TcpForwarder(port, target.Host, target.Port);
        var scenario = await CdcScenario.CreateAsync(clickHouseUrl: $"http://127.0.0.1:{port}", tweak: y => Watched(y));
        try
        {
            await StallAndCatchUpAsync(scenario, () => forwarder.DisposeAsync(), () => forwarder = new TcpForwarder(port, target.Host, target.Port));
        }
        finally
        {
            // The scenario drops its ClickHouse database through the forwarder.
            await scenario.DisposeAsync();
            await forwarder.DisposeAsync();
        }
    }

    private static async Task StallAndCatchUpAsync(CdcScenario scenario, Func<ValueTask> stall, Action resume)
    {
        await scenario.InsertAsync(50, seed: 71);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.WaitForAllSinksAsync(Patience);
        var source = (PostgresCdcSource)run.Host.Sources.OfType<StreamPipeline>().Single().Source;
        await CdcScenario.WaitUntilAsync(() => Task.FromResult(source.Slot is { LagSeconds: 0 }), Patience, () => Task.FromResult($"{source.Slot}"));
        var before = source.Slot!;
        before.ConfirmedLsn.ShouldBeGreaterThan(0);
        engine.Services.Health.Degraded.ShouldBeEmpty();

        await stall();
        await scenario.InsertAsync(200, seed: 72);
        await CdcScenario.WaitUntilAsync(
            () => Task.FromResult(engine.Services.Health.Degraded.Count == 1),
            Patience, () => Task.FromResult($"{source.Slot}"));
        var (component, reason) = engine.Services.Health.Degraded.Single();
        component.ShouldContain(scenario.Slot);
        reason.ShouldContain("lag_warn_seconds 1");
        reason.ShouldContain($"replication slot '{scenario.Slot}'");
        engine.Services.Health.Healthy.ShouldBeTrue("lag alone degrades, it does not fail");
        var behind = source.Slot!;
        behind.LagSeconds.ShouldBeGreaterThanOrEqualTo(1);
        behind.LagBytes.ShouldBeGreaterThan(0);
        engine.Services.Status.Snapshot().Pipelines.Single().Slot!.LagSeconds.ShouldBeGreaterThanOrEqualTo(1, "the status board shows the slot as the monitor last checked it");
        using (var text = new MemoryStream())
        {
            var exported = new Sluice.Serving.Observability.ServerMetrics();
            Sluice.Serving.Observability.StatusMetrics.Register(exported, engine.Services.Status);
            await exported.WriteAsync(text, CancellationToken.None);
            var metrics = System.Text.Encoding.UTF8.GetString(text.ToArray());
            foreach (var name in new[] { "sluice_cdc_slot_confirmed_lsn", "sluice_cdc_slot_lag_bytes", "sluice_cdc_slot_lag_seconds", "sluice_cdc_slot_wal_status", "sluice_cdc_seconds_since_message" })
            {
                metrics.ShouldContain($"{name}{{recipe=\"engagement-cdc\",pipeline=\"cdc\",slot=\"{scenario.Slot}\"");
            }
        }

        resume();
        await scenario.WaitForAllSinksAsync(Patience);
        await CdcScenario.WaitUntilAsync(
            () => Task.FromResult(engine.Services.Health.Degraded.Count == 0 && source.Slot!.ConfirmedLsn > behind.ConfirmedLsn),
            Patience, () => Task.FromResult($"{source.Slot}; {string.Join("; ", engine.Services.Health.Degraded)}"));
        source.Slot!.LagSeconds.ShouldBe(0);
        await scenario.AssertExactAsync();
    }

    [Fact]
    public async Task Heartbeats_advance_the_slot_while_published_tables_are_idle_and_others_are_busy_and_never_reach_the_sinks()
    {
        // Keepalives rarely (60 s): the slot must advance through the heartbeats.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => Watched(y, "\n      heartbeat_interval: 300ms").Replace("heartbeat: 1s", "heartbeat: 60s", StringComparison.Ordinal));
        await scenario.ExecuteAsync("CREATE TABLE busy_unpublished (id bigserial PRIMARY KEY, payload text)");
        await scenario.InsertAsync(20, seed: 73);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.WaitForAllSinksAsync(Patience);

        for (var round = 0; round < 3; round++)
        {
            await scenario.ExecuteAsync("INSERT INTO busy_unpublished (payload) SELECT repeat('x', 200) FROM generate_series(1, 2000)");
            var written = await scenario.ScalarAsync<string>("SELECT pg_current_wal_lsn()::text");
            await CdcScenario.WaitUntilAsync(
                async () => await scenario.ScalarAsync<bool>($"SELECT confirmed_flush_lsn >= '{written}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'"),
                TimeSpan.FromSeconds(90),
                async () => $"slot at {await scenario.ScalarAsync<string>($"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'")}, wanted {written}");
        }

        await scenario.AssertExactAsync();
        (await scenario.ClickHouseCountAsync()).ShouldBe(20);
    }

    [Fact]
    public async Task Heartbeats_reach_a_sink_as_rows_of_their_own_table_only_when_emit_heartbeats_asks_for_it()
    {
        // A ClickHouse sink for the heartbeat table beside the recipe's own sinks.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => Watched(y, "\n      heartbeat_interval: 300ms\n      emit_heartbeats: true")
            .Replace("      - type: redis_realtime", $"      - type: clickhouse\n        name: heartbeats\n        url: \"{ServerSettings.ClickHouseUrl}\"\n        database: {{db}}\n        table: _heartbeat\n" +
                "        order_by: [_lsn]\n        version: _lsn\n        insert_linger: 0ms\n        retry_max_delay: 500ms\n      - type: redis_realtime", StringComparison.Ordinal)
            .Replace("{db}", y[(y.IndexOf("database: t4_", StringComparison.Ordinal) + "database: ".Length)..].Split('\n')[0].Trim(), StringComparison.Ordinal));
        await scenario.InsertAsync(20, seed: 74);
        var started = DateTime.UtcNow.AddSeconds(-5);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await scenario.WaitForAllSinksAsync(Patience);
        var table = $"{scenario.ClickHouseDb}._heartbeat";
        async Task<long> Beats()
        {
            try { return long.Parse(await scenario.ClickHouseAsync($"SELECT count() FROM {table} FINAL"), System.Globalization.CultureInfo.InvariantCulture); }
            catch (ShouldAssertException) { return 0; }
        }

        await CdcScenario.WaitUntilAsync(async () => await Beats() >= 3, Patience, async () => $"{await Beats()} heartbeat rows");
        await scenario.InsertAsync(10, seed: 75);
        await scenario.WaitForAllSinksAsync(Patience);

        var rows = (await scenario.ClickHouseAsync($"SELECT _lsn, toUnixTimestamp(_commit_ts), slot, database FROM {table} FINAL ORDER BY _lsn")).Split('\n')
            .Select(l => l.Split('\t')).ToList();
        rows.Count.ShouldBeGreaterThanOrEqualTo(3);
        rows.Select(r => r[0]).Distinct().Count().ShouldBe(rows.Count, "each heartbeat is its own position");
        rows.ShouldAllBe(r => r[2] == scenario.Slot && r[3] == scenario.Database);
        rows.ShouldAllBe(r => long.Parse(r[1], System.Globalization.CultureInfo.InvariantCulture) >= new DateTimeOffset(started).ToUnixTimeSeconds(), "the time the heartbeat was written, read from the message");
        await scenario.AssertExactAsync();
        (await scenario.ClickHouseCountAsync()).ShouldBe(30, "the events table holds the events only");
    }

    [Fact]
    public async Task A_slot_past_max_slot_wal_keep_size_fails_health_when_unreserved_and_stops_the_run_when_lost_without_delivering_past_the_gap()
    {
        // A server of the test's own that lets a slot hold back one WAL segment (16 MB): two segment switches behind a
        // stalled slot make it 'unreserved'; the next checkpoint removes the WAL it still needs ('lost').
        await using var pg = new Chaos.ThrowawayPostgres("max_slot_wal_keep_size=16MB");
        await pg.StartAsync();
        using var reserved = FreePort.Refusing(); // refuses while the forwarder is closed, and no other server takes it meanwhile
        var port = reserved.Port;
        var target = new Uri(ServerSettings.ClickHouseUrl);
        var forwarder = new TcpForwarder(port, target.Host, target.Port);
        var scenario = await CdcScenario.CreateAsync(clickHouseUrl: $"http://127.0.0.1:{port}", postgres: pg.Options, tweak: y => Watched(y));
        try
        {
            await scenario.InsertAsync(50, seed: 76);
            using var engine = new Engine();
            await using var run = scenario.Start(engine);
            await scenario.WaitForAllSinksAsync(Patience);

            // ClickHouse stalls: changes are still read (Redis and the API get them), the slot stays where it is.
            await forwarder.DisposeAsync();
            await scenario.InsertAsync(30, seed: 77);
            await scenario.ExecuteAsync("CREATE TABLE filler (id bigserial PRIMARY KEY, payload text)");
            for (var i = 0; i < 10 && await WalStatusAsync(scenario) != "unreserved"; i++)
            {
                await scenario.ExecuteAsync("INSERT INTO filler (payload) SELECT repeat('x', 1000) FROM generate_series(1, 2000); SELECT pg_switch_wal();");
            }

            (await WalStatusAsync(scenario)).ShouldBe("unreserved");
            await CdcScenario.WaitUntilAsync(
                () => Task.FromResult(engine.Services.Health.Failures.Any(f => f.Reason.Contains("'unreserved'", StringComparison.Ordinal))), Patience,
                () => Task.FromResult($"failures: {string.Join("; ", engine.Services.Health.Failures)}; degraded: {string.Join("; ", engine.Services.Health.Degraded)}"));
            var (component, reason) = engine.Services.Health.Failures.Single(f => f.Reason.Contains("'unreserved'", StringComparison.Ordinal));
            component.ShouldContain(scenario.Slot);
            reason.ShouldContain("max_slot_wal_keep_size (16777216 bytes)");
            run.Task.IsCompleted.ShouldBeFalse("unreserved is a warning of what comes: the run goes on");

            // The checkpoint invalidates the slot: the run stops with the reason (the CLI exits 2 on it).
            await scenario.ExecuteAsync("CHECKPOINT");
            (await WalStatusAsync(scenario)).ShouldBe("lost");
            forwarder = new TcpForwarder(port, target.Host, target.Port);
            var failure = await Should.ThrowAsync<Core.ComponentFailedException>(run.Task.WaitAsync(Patience));
            failure.Message.ShouldContain($"replication slot '{scenario.Slot}' was invalidated by the server (wal_status 'lost'");
            failure.Message.ShouldContain("none were skipped");

            // Past the gap: rows committed now are never delivered; a new start refuses the lost slot at once.
            await scenario.InsertAsync(20, seed: 78);
            using (var again = SluiceProcess.Start(engine.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
            {
                (await again.WaitAsync(Patience)).ShouldBe(2, again.Stderr);
                again.Stderr.ShouldContain($"replication slot '{scenario.Slot}' was invalidated by the server");
                again.Stderr.ShouldNotContain("   at ", Case.Sensitive);
            }

            scenario.Api.Stats().DistinctIds.ShouldBe(80, "the 80 rows read before the gap reached the API, none after it");
            (await scenario.ClickHouseCountAsync()).ShouldBe(80, "ClickHouse wrote what it held queued when the run stopped, nothing after the gap");
        }
        finally
        {
            await scenario.DisposeAsync();
            await forwarder.DisposeAsync();
        }
    }

    private static Task<string> WalStatusAsync(CdcScenario scenario) =>
        scenario.ScalarAsync<string>($"SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'");
}
