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
        var metrics = new StatusMetrics(board);

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

    private static async Task<string> RenderAsync(StatusMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.WriteAsync(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
