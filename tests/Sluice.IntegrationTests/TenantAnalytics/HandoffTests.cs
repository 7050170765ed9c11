using System.Globalization;
using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.TenantAnalytics;

/// <summary>
/// Ingest flattens each request's events and hands the rows to the pipeline in memory; whatever it does not hand over
/// the pipeline reads back from the landing log. Both ways must give exactly the same rows.
/// </summary>
public sealed class HandoffTests
{
    private const string Tenant = "acme";

    [Fact]
    public async Task Rows_handed_over_in_memory_are_the_rows_read_back_from_the_landing_log()
    {
        using var engine = new Engine();
        var recipe = Engine.LoadRecipe("tenant-analytics");
        var options = ((HttpIngestSourceFactory)recipe.Pipelines.Single().Source).Options;
        List<string> fromMemory;
        await using (var source = new HttpIngestSource(engine.Services, recipe.Name, options))
        {
            var ingestor = source.Ingestor;
            // An array of both versions with items, PII and a bad event in the middle (ordinals must still line up).
            (await Json(ingestor, $"[{Event("a1", 1)},{Event("a2", 2, items: 3)},{{\"event_id\":\"bad\",\"schema_version\":1,\"event_type\":\"nope\"}},{Event("a3", 2, items: 1)}]"))
                .Rejected.Count.ShouldBe(1);
            // Refused whole (another tenant): nothing of it may show up in the next request's rows.
            (await Json(ingestor, $"[{Event("x1", 1)},{Event("x2", 1, tenant: "other")}]")).Status.ShouldBe(IngestStatus.WrongTenant);
            // NDJSON, one line that does not parse.
            var ndjson = $"{Event("n1", 1, items: 2)}\n{{\"event_id\": \"n2\", truncated\n{Event("n3", 2)}\n";
            var lines = new List<EventSlice>();
            RequestBody.SplitNdjson(Encoding.UTF8.GetBytes(ndjson), lines);
            (await ingestor.IngestAsync(Encoding.UTF8.GetBytes(ndjson), lines, Tenant, "r-ndjson")).Accepted.ShouldBe(2);
            // A duplicate makes the request land fewer events than it has rows: the pipeline reads it from the log.
            (await Json(ingestor, $"[{Event("a1", 1)},{Event("d1", 1, items: 2)}]")).Duplicates.ShouldBe(1);
            (await Json(ingestor, Event("s1", 2))).Accepted.ShouldBe(1);
            source.Handoff.Bytes.ShouldBeGreaterThan(0, "rows were handed over");

            fromMemory = await RowsAsync(source);
            source.Handoff.Bytes.ShouldBe(0, "the pipeline took every entry");
            source.EventsFromMemory.ShouldBe(6, "a1 a2 a3 n1 n3 s1: every request without a duplicate was handed over");
            source.EventsFromLog.ShouldBe(1, "d1, whose request had a duplicate");
        }

        await using (var again = new HttpIngestSource(engine.Services, recipe.Name, options))
        {
            again.Handoff.Bytes.ShouldBe(0);
            var fromLog = await RowsAsync(again);
            again.EventsFromLog.ShouldBe(7);
            again.EventsFromMemory.ShouldBe(0);
            fromLog.Count(r => r.StartsWith("events|", StringComparison.Ordinal)).ShouldBe(7, "a1 a2 a3 n1 n3 d1 s1");
            fromMemory.ShouldBe(fromLog);
        }
    }

    [Fact]
    public async Task A_request_the_queue_refuses_leaves_nothing_in_the_handoff()
    {
        using var engine = new Engine();
        var recipe = Engine.LoadRecipe("tenant-analytics");
        var options = ((HttpIngestSourceFactory)recipe.Pipelines.Single().Source).Options;
        var folder = Path.Combine(engine.Services.Data.Root, "small-queue");
        // Rows are handed over before their append; a refused append must take them back, or the pipeline would wait
        // for offsets that the next request's events get.
        await using var log = LandingLog.Open(folder, 1 << 20, queueBytes: 2048, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var handoff = new IngestHandoff(1 << 20);
        var ingestor = new StreamIngestor(options, new StreamShape(options), log, new DedupIndex(Path.Combine(folder, "dedup"), options.DedupWindow, options.DedupMaxKeys),
            engine.Services.DeadLetters, engine.Services.Metadata, TimeProvider.System, recipe.Name, handoff, PiiHasher.ForDataFolder(engine.Services.Data));

        var tooMany = "[" + string.Join(",", Enumerable.Range(0, 8).Select(i => Event($"q{i}", 1))) + "]";
        (await Json(ingestor, tooMany)).Status.ShouldBe(IngestStatus.QueueFull);
        handoff.Bytes.ShouldBe(0);
        handoff.NextStart.ShouldBeNull();

        (await Json(ingestor, Event("fits", 1))).Accepted.ShouldBe(1);
        handoff.NextStart.ShouldBe(0, "the accepted request starts the log");
        handoff.TryTake(0, log.DurableEnd, out var rows).ShouldBeTrue();
        rows.End.ShouldBe(log.DurableEnd);
        rows.Events.ShouldBe(1);

        ingestor.DedupKeys.ShouldBe(1, "the refused request's keys were taken back");
        var retry = await Json(ingestor, Event("q0", 1));
        (retry.Accepted, retry.Duplicates).ShouldBe((1, 0), "q0 never landed, so its retry is no duplicate");
        (await Json(ingestor, Event("q0", 1))).Duplicates.ShouldBe(1);
    }

    private static Task<IngestOutcome> Json(StreamIngestor ingestor, string body) =>
        ingestor.IngestAsync(Encoding.UTF8.GetBytes(body), null, Tenant, "r-json");

    private static string Event(string id, int version, int items = 0, string tenant = Tenant)
    {
        var itemList = string.Join(",", Enumerable.Range(0, items).Select(i => $"{{\"sku\":\"SKU-{i}\",\"qty\":{i + 1},\"price\":{9.5 + i}}}"));
        var session = version == 2 ? ",\"session\":{\"id\":\"s-" + id + "\",\"device\":\"web\"}" : "";
        var order = items > 0 ? $",\"order\":{{\"id\":\"o-{id}\",\"total\":{12.25 * items},\"currency\":\"EUR\"}},\"items\":[{itemList}]" : "";
        var type = items > 0 ? "purchase" : "page_view";
        return $"{{\"event_id\":\"{id}\",\"schema_version\":{version},\"tenant_id\":\"{tenant}\",\"event_type\":\"{type}\",\"event_ts\":\"2025-11-08T10:30:00Z\"," +
               $"\"customer\":{{\"id\":\"c-{id}\",\"email\":\"{id}@example.test\",\"country\":\"DE\"}},\"ml_context\":{{\"model_scores\":{{\"fraud\":0.25,\"churn\":0.5}}}}{order}{session}}}";
    }

    /// <summary>Every row of every table the pipeline reads up to the log's end, as text, in order.</summary>
    private static async Task<List<string>> RowsAsync(HttpIngestSource source)
    {
        var rows = new List<string>();
        var end = source.Log.DurableEnd;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var batch in source.ReadAsync(null, stop.Token))
        {
            foreach (var table in batch.Tables)
            {
                for (var r = 0; r < table.Count; r++)
                {
                    rows.Add(table.Schema.Table + "|" + string.Join("|", table.Columns.Select(c => Convert.ToString(c.GetValue(r), CultureInfo.InvariantCulture))));
                }
            }

            if (batch.Position >= end) { break; }
        }

        return rows;
    }
}
