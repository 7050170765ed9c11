using System.Text;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Status;
using Sluice.Serving.Observability;

namespace Sluice.Tests.Status;

public class StatusMetricsTests
{
    [Fact]
    public async Task The_board_is_exported_in_prometheus_text_with_the_same_numbers()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var board = new StatusBoard(clock);
        var p = board.Pipeline("engagement-cdc", "cdc", "postgres_cdc");
        p.Running();
        p.Sink("clickhouse");
        p.Sink("api").Breaker = () => "open";
        p.Read(120, 5_000);
        p.Committed("clickhouse", 120, 4_000);
        p.Slot = () => new SlotFigures("sluice_engagement", 123_456, 2_048, 1.5, "extended", 1_000_000, 3, clock.GetUtcNow().UtcDateTime);
        p.Backlog = () => new Backlog(2_048, "bytes");
        board.DeadLettersOf("engagement-cdc", () => [new DeadLetterCount("", "postgres_cdc:engagement-cdc/sluice_engagement", "bad value", 3)]);
        var metrics = new ServerMetrics();
        StatusMetrics.Register(metrics, board);

        var text = await RenderAsync(metrics);
        text.ShouldContain("sluice_pipeline_records_in_total{recipe=\"engagement-cdc\",pipeline=\"cdc\"} 120");
        text.ShouldContain("sluice_sink_records_out_total{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} 120");
        text.ShouldContain("sluice_sink_lag_position{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} 1000");
        text.ShouldContain("sluice_pipeline_state{recipe=\"engagement-cdc\",pipeline=\"cdc\",state=\"running\"} 1");
        text.ShouldContain("sluice_pipeline_backlog{recipe=\"engagement-cdc\",pipeline=\"cdc\",unit=\"bytes\"} 2048");
        text.ShouldContain("sluice_cdc_slot_lag_bytes{recipe=\"engagement-cdc\",pipeline=\"cdc\",slot=\"sluice_engagement\"} 2048");
        text.ShouldContain("sluice_cdc_slot_safe_wal_bytes{recipe=\"engagement-cdc\",pipeline=\"cdc\",slot=\"sluice_engagement\"} 1000000");
        text.ShouldContain("sluice_cdc_slot_wal_status{recipe=\"engagement-cdc\",pipeline=\"cdc\",slot=\"sluice_engagement\",status=\"extended\"} 1");
        text.ShouldContain("sluice_dead_letters_pending{recipe=\"engagement-cdc\",source=\"postgres_cdc:engagement-cdc/sluice_engagement\",reason=\"bad value\"} 3");
        text.ShouldContain("# TYPE sluice_sink_records_out_total counter");
        text.ShouldContain("sluice_sink_breaker_state{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"api\",state=\"open\"} 1");
        text.ShouldNotContain("sink=\"clickhouse\",state=", Case.Sensitive, "no breaker, no breaker series");

        p.Read(30, 6_000);
        p.Committed("clickhouse", 30, 6_000);
        board.DeadLettersOf("engagement-cdc", () => []);
        text = await RenderAsync(metrics);
        text.ShouldContain("sluice_sink_records_out_total{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} 150");
        text.ShouldNotContain("reason=\"bad value\"", Case.Sensitive, "letters replayed: the series goes");
    }

    [Fact]
    public async Task A_slot_and_its_snapshots_series_go_when_the_pipeline_no_longer_shows_them()
    {
        // A worker of a cluster shows the slot and its snapshots while it holds the slot, and nothing once it let it go.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var board = new StatusBoard(clock);
        var p = board.Pipeline("snap", "cdc", "postgres_cdc");
        p.Slot = () => new SlotFigures("s1", 1, 2, 0, "reserved", null, 1, clock.GetUtcNow().UtcDateTime);
        p.Snapshots = () => [new SnapshotFigures(7, "public.items", "on_demand", "running", 300, 2000, 3, 0, null)];
        var metrics = new ServerMetrics();
        StatusMetrics.Register(metrics, board);
        const string Labels = "recipe=\"snap\",pipeline=\"cdc\",table=\"public.items\",request=\"7\"";

        var text = await RenderAsync(metrics);
        text.ShouldContain($"sluice_cdc_snapshot_rows_read{{{Labels}}} 300\n");
        text.ShouldContain($"sluice_cdc_snapshot_rows_total{{{Labels}}} 2000\n");
        text.ShouldContain($"sluice_cdc_snapshot_state{{{Labels},state=\"running\"}} 1\n");
        text.ShouldContain("sluice_cdc_slot_lag_bytes{recipe=\"snap\",pipeline=\"cdc\",slot=\"s1\"} 2\n");
        text.ShouldNotContain("sluice_cdc_slot_safe_wal_bytes{", Case.Sensitive, "unlimited: no series");

        p.Slot = null;
        p.Snapshots = null;
        text = await RenderAsync(metrics);
        text.ShouldNotContain("sluice_cdc_snapshot_rows_read{", Case.Sensitive, text);
        text.ShouldNotContain("sluice_cdc_snapshot_state{", Case.Sensitive, text);
        text.ShouldNotContain("sluice_cdc_slot_lag_bytes{", Case.Sensitive, text);
        text.ShouldNotContain("sluice_cdc_slot_wal_status{", Case.Sensitive, text);
    }

    [Fact]
    public async Task Ingest_counters_histograms_and_scrape_time_gauges_share_the_servers_one_prometheus_net_registry()
    {
        var metrics = new ServerMetrics();
        metrics.Counter("x_total", "things", "stream").WithLabels("s\"1").Inc(3);
        metrics.Counter("x_total", "things", "stream").WithLabels("s2").Inc();
        metrics.Histogram("lat_seconds", "latency", [0.1, 1], "stream").WithLabels("s").Observe(0.5);
        var fill = metrics.Gauge("fill", "fill ratio");
        var level = 0.25;
        metrics.BeforeScrape(() => fill.Set(level));
        ProcessGauges.Register(metrics);
        var text = await RenderAsync(metrics);
        text.ShouldContain("# TYPE x_total counter\n");
        text.ShouldContain("x_total{stream=\"s\\\"1\"} 3\n");
        text.ShouldContain("x_total{stream=\"s2\"} 1\n", customMessage: "asked for again by name, the same counter");
        text.ShouldContain("lat_seconds_bucket{stream=\"s\",le=\"0.1\"} 0\n");
        text.ShouldContain("lat_seconds_bucket{stream=\"s\",le=\"1\"} 1\n");
        text.ShouldContain("lat_seconds_count{stream=\"s\"} 1\n");
        text.ShouldContain("# TYPE fill gauge\nfill 0.25\n");
        text.ShouldContain("sluice_gc_collections{generation=\"0\"} ");
        text.ShouldContain("sluice_process_resident_bytes ");
        level = 0.5;
        (await RenderAsync(metrics)).ShouldContain("fill 0.5\n", customMessage: "gauges are set again at every scrape");
    }

    private static async Task<string> RenderAsync(ServerMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.WriteAsync(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
