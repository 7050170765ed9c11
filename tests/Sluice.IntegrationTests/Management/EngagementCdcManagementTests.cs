using System.Globalization;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.Management;

/// <summary>engagement-cdc against the real Postgres: counts per sink and the replication slot's figures on /metrics and in status, and a tap of live changes.</summary>
public class EngagementCdcManagementTests
{
    [Fact]
    public async Task Run_exports_sink_counts_and_slot_gauges_and_tap_shows_live_changes()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        await scenario.InsertAsync(200, rowsPerStatement: 50, seed: 16);
        using var run = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        var file = await WaitForFileAsync(scenario.DataRoot, "engagement-cdc", run, TimeSpan.FromSeconds(120));
        await scenario.WaitForAllSinksAsync(TimeSpan.FromSeconds(120));
        // Every change record reaches every sink: the events, and the content rows the enrichment keeps its cache from.
        var expected = await scenario.PgCountAsync() + await scenario.ScalarAsync<long>("SELECT count(*) FROM content");
        var labels = $"recipe=\"engagement-cdc\",pipeline=\"cdc\"";
        var slot = $"{labels},slot=\"{scenario.Slot}\"";
        var body = await WaitForMetricsAsync(file.Url, TimeSpan.FromSeconds(60),
            $"sluice_sink_records_out_total{{{labels},sink=\"clickhouse\"}} {expected.ToString(CultureInfo.InvariantCulture)}",
            $"sluice_cdc_slot_wal_status{{{slot},status=\"reserved\"}} 1",
            $"sluice_pipeline_state{{{labels},state=\"running\"}} 1",
            $"sluice_sink_breaker_state{{{labels},sink=\"api\",state=\"closed\"}} 1");
        body.ShouldContain($"sluice_cdc_slot_lag_bytes{{{slot}}} ");
        body.ShouldContain($"sluice_cdc_slot_confirmed_lsn{{{slot}}} ");
        body.ShouldContain($"sluice_sink_lag_seconds{{{labels},sink=\"redis\"}} ");
        body.ShouldContain($"sluice_sink_batches_out_total{{{labels},sink=\"api\"}} ");

        var status = await SluiceProcess.RunAsync(scenario.DataRoot, ["status", "--format", "json"]);
        status.Code.ShouldBe(0, status.Err);
        var pipeline = Json(status.Out).GetProperty("pipelines")[0];
        pipeline.GetProperty("recordsIn").GetInt64().ShouldBeGreaterThanOrEqualTo(expected);
        pipeline.GetProperty("slot").GetProperty("slot").GetString().ShouldBe(scenario.Slot);
        pipeline.GetProperty("slot").GetProperty("walStatus").GetString().ShouldBe("reserved");
        pipeline.GetProperty("slot").GetProperty("checkedAt").GetString()!.ShouldEndWith("Z");
        pipeline.GetProperty("sinks").EnumerateArray().Select(s => s.GetProperty("sink").GetString()).ShouldBe(["clickhouse", "redis", "api"]);
        pipeline.GetProperty("sinks")[0].GetProperty("recordsOut").GetInt64().ShouldBe(expected);

        // What the ClickHouse sink committed, as it commits: insert until the tap has its three records.
        using (var tap = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "tap", "engagement-cdc/cdc", "--sink", "clickhouse", "--limit", "3"))
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            for (var i = 0; !tap.HasExited && DateTime.UtcNow < deadline; i++)
            {
                await scenario.InsertAsync(5, rowsPerStatement: 5, seed: 1_600 + i);
                await Task.Delay(300);
            }

            (await tap.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, tap.Stderr);
            var lines = tap.Stdout.Trim().Split('\n');
            lines.Length.ShouldBe(3);
            foreach (var line in lines)
            {
                var json = Json(line);
                json.GetProperty("sink").GetString().ShouldBe("clickhouse");
                json.GetProperty("record").TryGetProperty("content_type", out _).ShouldBeTrue(line);
            }
        }

        var unknown = await SluiceProcess.RunAsync(scenario.DataRoot, ["tap", "engagement-cdc/cdc", "--sink", "nowhere"]);
        unknown.Code.ShouldBe(1);
        unknown.Err.ShouldContain("has no sink 'nowhere' (sinks: clickhouse, redis, api)");

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
    }
}
