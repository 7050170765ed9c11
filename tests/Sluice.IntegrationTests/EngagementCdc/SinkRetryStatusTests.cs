using System.Text;
using Sluice.Connectors.ClickHouse;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Observability;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>A sink retrying a server that is away shows it in the status figures and /metrics, and stops showing it once the write lands.</summary>
public sealed class SinkRetryStatusTests
{
    [Fact]
    public async Task A_clickhouse_sink_waiting_for_its_server_reports_the_attempts_and_the_last_error_until_it_lands()
    {
        var database = $"t_retry_{Guid.NewGuid():N}"[..24];
        using var reserved = FreePort.Refusing(); // refuses until the forwarder is on it, and only ever forwards to the test's server
        var port = reserved.Port;
        var target = new Uri(ServerSettings.ClickHouseUrl);
        using var engine = new Engine();
        var board = engine.Services.Status;
        var status = board.Pipeline("engagement-cdc", "cdc", "postgres_cdc").Sink("clickhouse");
        var metrics = new ServerMetrics();
        StatusMetrics.Register(metrics, board);
        await using var sink = new ClickHouseSink(engine.Services, new ClickHouseOptions
        {
            Url = new Uri($"http://127.0.0.1:{port}"),
            Database = database,
            Table = "facts",
            OrderBy = ["id"],
            RetryDelay = TimeSpan.FromMilliseconds(20),
            RetryMaxDelay = TimeSpan.FromMilliseconds(100),
        });
        sink.AttachStatus(status);
        var schema = new TableSchema("facts", [new FieldSpec("id", FieldType.Integer, false), new FieldSpec("_lsn", FieldType.Integer, false)]);
        var batch = new RecordBatch(new ColumnBatch(schema, [new long?[] { 1, 2 }, new long?[] { 10, 11 }], 2), 11);

        // Nothing listens on the port: the sink retries.
        var write = sink.WriteAsync(batch, "unused", CancellationToken.None);
        await Wait.UntilAsync(() => View(board).Retry is { Attempt: >= 2 });
        var retrying = View(board);
        retrying.Retry!.LastError.ShouldNotBeNullOrWhiteSpace();
        retrying.Retry.Since.ShouldBeLessThanOrEqualTo(DateTime.UtcNow);
        var text = await RenderAsync(metrics);
        text.ShouldContain("sluice_sink_retry_attempt{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} ");
        text.ShouldNotContain("sluice_sink_retry_attempt{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} 0\n");

        // The server comes back (a forwarder on the port): the write lands and the retry state clears.
        await using (new TcpForwarder(port, target.Host, target.Port))
        {
            await write.WaitAsync(TimeSpan.FromSeconds(60));
        }

        var after = View(board);
        after.Retry.ShouldBeNull();
        after.Retries.ShouldBeGreaterThanOrEqualTo(2);
        text = await RenderAsync(metrics);
        text.ShouldContain("sluice_sink_retry_attempt{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"} 0\n");
        text.ShouldContain($"sluice_sink_retries_total{{recipe=\"engagement-cdc\",pipeline=\"cdc\",sink=\"clickhouse\"}} {after.Retries}\n");
        using var http = new HttpClient();
        (await http.PostAsync(ServerSettings.ClickHouseUrl, new StringContent($"DROP DATABASE IF EXISTS {database}"))).EnsureSuccessStatusCode();
    }

    private static SinkView View(StatusBoard board) => board.Snapshot().Pipelines.Single(p => p.Recipe == "engagement-cdc").Sinks.Single();

    private static async Task<string> RenderAsync(ServerMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.WriteAsync(stream, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
