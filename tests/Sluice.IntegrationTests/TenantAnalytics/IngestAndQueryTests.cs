using System.Net;
using System.Text;
using System.Text.Json;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class IngestAndQueryTests
{
    private const string Purchase = """{"event_id":"p1","schema_version":1,"event_type":"purchase","event_ts":"2025-11-08T10:30:00Z","customer":{"id":"c1","email":"ann@example.com","country":"DE"},"order":{"id":"o1","total":100.0,"currency":"EUR"},"items":[{"sku":"A","qty":2,"price":30},{"sku":"B","qty":1,"price":40}],"ml_context":{"model_scores":{"fraud":0.1,"churn":0.2}},"processing_flags":{"pii_contains":true}}""";
    private const string Refund = """{"event_id":"r1","schema_version":2,"event_type":"refund","event_ts":"2025-11-08T11:15:00Z","customer":{"id":"c1"},"order":{"id":"o1","total":40.0,"currency":"EUR"},"session":{"id":"s1","device":"ios"}}""";
    private const string View = """{"event_id":"v1","schema_version":2,"event_type":"page_view","event_ts":"2025-11-08T11:20:00Z","customer":{"id":"c2"},"session":{"id":"s2","device":"web"}}""";

    [Fact]
    public async Task Json_array_and_ndjson_land_flattened_with_items_and_hashed_pii_and_the_metrics_add_up()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("acme", TokenRole.Writer);
        var reader = server.Token("acme", TokenRole.Reader);

        using var first = await server.PostAsync(writer, $"[{Purchase},{Refund}]");
        first.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var body = await TenantAnalyticsServer.JsonAsync(first);
        body.GetProperty("accepted").GetInt32().ShouldBe(2);
        body.GetProperty("rejected").GetArrayLength().ShouldBe(0);
        using var second = await server.PostAsync(writer, View + "\n" + Purchase + "\n", "application/x-ndjson");
        var secondBody = await TenantAnalyticsServer.JsonAsync(second);
        secondBody.GetProperty("accepted").GetInt32().ShouldBe(2);
        secondBody.GetProperty("duplicates").GetInt32().ShouldBe(1);

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 3)).ShouldBe(3);
        engine.Count("SELECT count(*) FROM analytics.event_items WHERE event_id = 'p1'").ShouldBe(2);
        engine.Count("SELECT count(*) FROM analytics.events WHERE tenant_id = 'acme' AND session_device = 'ios' AND schema_version = 2").ShouldBe(1);
        var email = engine.Services.Query.Query("SELECT customer_email FROM analytics.events WHERE event_id = 'p1'").Rows[0][0] as string;
        email.ShouldNotBeNull();
        email.ShouldNotContain("ann");
        email.Length.ShouldBe(32);
        // Raw PII stays only in the landing log.
        Directory.GetFiles(Path.Combine(engine.DataRoot, "landing", "ecommerce"), "*.seg").Select(File.ReadAllText).Any(t => t.Contains("ann@example.com", StringComparison.Ordinal)).ShouldBeTrue();

        var (status, byType) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-08T00:00:00Z&to=2025-11-09T00:00:00Z&group_by=event_type");
        status.ShouldBe(200);
        byType.GetProperty("tenant").GetString().ShouldBe("acme");
        var rows = byType.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("key").GetString()!, r => r);
        rows.Keys.Order().ShouldBe(["page_view", "purchase", "refund"]);
        rows["purchase"].GetProperty("revenue").GetDouble().ShouldBe(100.0);
        rows["refund"].GetProperty("revenue").GetDouble().ShouldBe(-40.0);
        rows["page_view"].GetProperty("unique_customers").GetInt64().ShouldBe(1);

        var (_, byHour) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-08&to=2025-11-09&group_by=hour");
        byHour.GetProperty("rows").EnumerateArray().Select(r => (r.GetProperty("key").GetString(), r.GetProperty("events").GetInt64())).ShouldBe([("2025-11-08T10:00:00Z", 1L), ("2025-11-08T11:00:00Z", 2L)]);
        var (_, byDay) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-08&to=2025-11-09&group_by=day");
        var day = byDay.GetProperty("rows").EnumerateArray().Single();
        day.GetProperty("events").GetInt64().ShouldBe(3);
        day.GetProperty("revenue").GetDouble().ShouldBe(60.0);
        day.GetProperty("unique_customers").GetInt64().ShouldBe(2);
    }

    [Fact]
    public async Task Bad_input_is_refused_or_rejected_per_event_with_where_and_why_and_good_events_still_land()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("acme", TokenRole.Writer);

        // Unparsable application/json: 400 with the position; nothing lands.
        using var broken = await server.PostAsync(writer, "[\n" + Purchase + ",\n{\"event_id\": \"x\",, }]");
        broken.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var brokenBody = await TenantAnalyticsServer.JsonAsync(broken);
        brokenBody.GetProperty("line").GetInt64().ShouldBe(3);
        brokenBody.GetProperty("error").GetString()!.ShouldContain("malformed JSON");

        // Shaped like objects but not JSON inside an event: the same 400, at the bad token.
        using (var response = await server.PostAsync(writer, "[\n" + Purchase + ",\n{\"event_id\": tru}]"))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            var json = await TenantAnalyticsServer.JsonAsync(response);
            (json.GetProperty("line").GetInt64(), json.GetProperty("byte").GetInt64()).ShouldBe((3, 17));
        }

        // Truncated NDJSON line, wrong types, unknown version: per-event rejections inside the 202; the good event lands.
        var ndjson = string.Join("\n",
            View,
            """{"event_id":"w1","schema_version":1,"event_type":"purchase","event_ts":"2025-11-08T10:00:00Z","customer":{"id":"c1"},"order":{"id":"o","total":"ten","currency":"EUR"}}""",
            """{"event_id":"w2","schema_version":1,"event_type":"page_view","event_ts":"2025-11-08T10:00:00Z","customer":{"id":"c1"},"items":[{"sku":"A","qty":1.5,"price":1}]}""",
            """{"event_id":"w3","schema_version":7,"event_type":"page_view","event_ts":"2025-11-08T10:00:00Z","customer":{"id":"c1"}}""",
            """{"event_id":"w4","schema_version":1,"event_type":"teleport","event_ts":"yesterday","customer":{"id":"c1"}}""",
            """{"event_id":"w5","schema_version":1,"event_type":"page_view","event_ts":"2025-11-08T""");
        using var mixed = await server.PostAsync(writer, ndjson, "application/x-ndjson");
        mixed.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        var mixedBody = await TenantAnalyticsServer.JsonAsync(mixed);
        mixedBody.GetProperty("accepted").GetInt32().ShouldBe(1);
        var rejected = mixedBody.GetProperty("rejected").EnumerateArray().ToList();
        rejected.Select(r => r.GetProperty("line").GetInt32()).ShouldBe([2, 3, 4, 5, 6]);
        rejected[0].GetProperty("field").GetString().ShouldBe("order.total");
        rejected[0].GetProperty("error").GetString()!.ShouldContain("expected a number, got text 'ten'");
        rejected[1].GetProperty("field").GetString().ShouldBe("items[0].qty");
        rejected[2].GetProperty("field").GetString().ShouldBe("schema_version");
        rejected[2].GetProperty("error").GetString()!.ShouldContain("unknown schema version 7");
        rejected[3].GetProperty("field").GetString().ShouldBe("event_type");
        rejected[4].GetProperty("error").GetString()!.ShouldContain("malformed JSON");
        engine.Services.DeadLetters.Count("http:tenant-analytics/ecommerce").ShouldBe(5);
        engine.Services.DeadLetters.List("http:tenant-analytics/ecommerce").Select(l => l.Position).ShouldContain(p => p.Contains("line 3") && p.Contains("items[0].qty"));

        // Invalid UTF-8: a JSON body is refused whole, an NDJSON line is that event's problem.
        var invalid = Encoding.UTF8.GetBytes("""{"event_id":"u1","schema_version":1,"event_type":"page_view","event_ts":"2025-11-08T10:00:00Z","customer":{"id":"c""").Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.UTF8.GetBytes("\"}}")).ToArray();
        using (var response = await server.PostAsync(writer, invalid))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            (await response.Content.ReadAsStringAsync()).ShouldContain("UTF-8");
        }

        using (var response = await server.PostAsync(writer, Encoding.UTF8.GetBytes(View.Replace("v1", "v9", StringComparison.Ordinal) + "\n").Concat(invalid).ToArray(), "application/x-ndjson"))
        {
            var json = await TenantAnalyticsServer.JsonAsync(response);
            json.GetProperty("accepted").GetInt32().ShouldBe(1);
            json.GetProperty("rejected")[0].GetProperty("error").GetString()!.ShouldContain("UTF-8");
        }

        // Well-formed JSON values that are not objects: each is rejected on its own.
        using (var response = await server.PostAsync(writer, "[1, \"text\"]"))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            var json = await TenantAnalyticsServer.JsonAsync(response);
            json.GetProperty("rejected").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()).ShouldBe([0, 1]);
        }

        // Wrong content type and no body limit abuse.
        using (var response = await server.PostAsync(writer, Purchase, "text/plain"))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.UnsupportedMediaType);
        }

        // A 10 MB single event: rejected on its own (over max_event_bytes), with its reason in the dead-letter store.
        var huge = Purchase.Replace("\"c1\"", "\"" + new string('x', 10 << 20) + "\"", StringComparison.Ordinal);
        using (var response = await server.PostAsync(writer, $"[{huge},{Refund}]"))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            var json = await TenantAnalyticsServer.JsonAsync(response);
            json.GetProperty("accepted").GetInt32().ShouldBe(1);
            json.GetProperty("rejected")[0].GetProperty("error").GetString()!.ShouldContain("max_event_bytes");
        }

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 3)).ShouldBe(3);
        engine.Count("SELECT count(*) FROM analytics.events WHERE event_id IN ('v1', 'v9', 'r1')").ShouldBe(3);
    }

    [Fact]
    public async Task A_100000_event_batch_lands_whole_and_a_body_over_the_limit_gets_413()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("bulk", TokenRole.Writer);
        var events = new StringBuilder(100_000 * 150);
        for (var i = 0; i < 100_000; i++)
        {
            events.Append(i == 0 ? "[" : ",").Append("{\"event_id\":\"b").Append(i).Append("\",\"schema_version\":1,\"event_type\":\"page_view\",\"event_ts\":\"2025-11-09T08:00:00Z\",\"customer\":{\"id\":\"c").Append(i % 977).Append("\"}}");
        }

        events.Append(']');
        using var response = await server.PostAsync(writer, events.ToString());
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        (await TenantAnalyticsServer.JsonAsync(response)).GetProperty("accepted").GetInt32().ShouldBe(100_000);
        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 100_000, TimeSpan.FromSeconds(60))).ShouldBe(100_000);
        engine.Count("SELECT count(DISTINCT customer_id) FROM analytics.events").ShouldBe(977);

        // Expect: 100-continue, as curl sends for large bodies: the 413 comes before the body is sent.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/ecommerce/events") { Content = new ByteArrayContent(new byte[(32 << 20) + 10]) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", writer);
        request.Headers.ExpectContinue = true;
        using var tooLarge = await server.Client.SendAsync(request);
        tooLarge.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await tooLarge.Content.ReadAsStringAsync()).ShouldContain("max_request_bytes");
    }

    [Fact]
    public async Task Generated_events_are_valid_for_both_schema_versions()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("gen", TokenRole.Writer);
        var generator = new EcommerceEvents(new Random(3));
        var ids = Enumerable.Range(0, 500).Select(i => $"g{i}").ToList();
        using var response = await server.PostAsync(writer, generator.Batch("gen", ids, new DateTime(2025, 11, 8, 9, 0, 0, DateTimeKind.Utc)));
        var json = await TenantAnalyticsServer.JsonAsync(response);
        json.GetProperty("rejected").GetArrayLength().ShouldBe(0, json.ToString());
        json.GetProperty("accepted").GetInt32().ShouldBe(500);
        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 500)).ShouldBe(500);
        engine.Count("SELECT count(DISTINCT schema_version) FROM analytics.events").ShouldBe(2);
        engine.Count("SELECT count(*) FROM analytics.events WHERE event_type IN ('purchase', 'refund') AND order_total IS NULL").ShouldBe(0);
    }
}
