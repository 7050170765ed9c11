using System.Net;
using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Lake;
using Sluice.Serving.Auth;
using Sluice.Cli;

namespace Sluice.IntegrationTests.Reliability;

/// <summary>
/// Bad values against the real tenant-analytics server: a number out of range, a lone surrogate, a timestamp its offset
/// moves past year 9999 are each their event's rejection (field, reason, dead letter) while the good events of the same
/// request land; a NaN or infinity already in the lake is served, not a 500; a control character in a query
/// parameter is a 400.
/// </summary>
public sealed class BadValuesTests
{
    private static string Purchase(string id, string total = "10.0", string ts = "2025-11-08T10:30:00Z", string customer = "\"c1\"") =>
        "{\"event_id\":\"" + id + "\",\"schema_version\":1,\"event_type\":\"purchase\",\"event_ts\":\"" + ts + "\",\"customer\":{\"id\":" + customer +
        "},\"order\":{\"id\":\"o1\",\"total\":" + total + ",\"currency\":\"EUR\"},\"items\":[{\"sku\":\"A\",\"qty\":1,\"price\":10}]}";

    private static readonly (string Id, Func<string, string> Event, string Field, string Why)[] Bad =
    [
        ("inf", id => Purchase(id, total: "1e309"), "order.total", "out of range for a double"),
        ("ninf", id => Purchase(id, total: "-1e309"), "order.total", "out of range for a double"),
        ("sur", id => Purchase(id, customer: "\"\\ud800\""), "customer.id", "lone UTF-16 surrogate"),
        ("late", id => Purchase(id, ts: "9999-12-31T23:59:59-01:00"), "event_ts", "unparsable timestamp"),
        ("qty", id => Purchase(id).Replace("\"qty\":1", "\"qty\":99999999999999999999", StringComparison.Ordinal), "items[0].qty", "out of range for a whole number"),
    ];

    [Fact]
    public async Task Each_bad_value_is_its_events_rejection_and_the_good_events_of_the_same_batch_land()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("acme", TokenRole.Writer);
        var reader = server.Token("acme", TokenRole.Reader);

        foreach (var (contentType, open, separator, close) in new[] { ("application/json", "[", ",", "]"), ("application/x-ndjson", "", "\n", "") })
        {
            var tag = contentType.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var events = new List<string> { Purchase("good-a" + tag) };
            events.AddRange(Bad.Select(b => b.Event(b.Id + tag)));
            events.Add(Purchase("good-b" + tag));
            using var response = await server.PostAsync(writer, open + string.Join(separator, events) + close, contentType);
            var text = await response.Content.ReadAsStringAsync();
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, text);
            var body = JsonDocument.Parse(text).RootElement;
            body.GetProperty("accepted").GetInt32().ShouldBe(2, text);
            var rejected = body.GetProperty("rejected").EnumerateArray().ToList();
            rejected.Select(r => r.GetProperty("index").GetInt32()).ShouldBe(Enumerable.Range(1, Bad.Length), text);
            for (var i = 0; i < Bad.Length; i++)
            {
                rejected[i].GetProperty("field").GetString().ShouldBe(Bad[i].Field, text);
                rejected[i].GetProperty("error").GetString()!.ShouldContain(Bad[i].Why);
            }
        }

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 4)).ShouldBe(4);
        engine.Count("SELECT count(*) FROM analytics.events WHERE NOT isfinite(order_total)").ShouldBe(0);
        var letters = engine.Services.DeadLetters.List("http:tenant-analytics/ecommerce");
        letters.Count.ShouldBe(2 * Bad.Length);
        letters.ShouldContain(l => l.Position.Contains("order.total", StringComparison.Ordinal) && l.Reason.Contains("out of range for a double", StringComparison.Ordinal));
        letters.ShouldContain(l => l.Position.Contains("customer.id", StringComparison.Ordinal));
        var (status, metrics) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-08&to=2025-11-09");
        status.ShouldBe(200);
        metrics.GetProperty("rows").EnumerateArray().Single().GetProperty("revenue").GetDouble().ShouldBe(40.0);
    }

    [Fact]
    public async Task Nan_and_infinity_already_in_the_lake_are_served_as_text_never_a_500()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("acme", TokenRole.Writer);
        var reader = server.Token("acme", TokenRole.Reader);
        using (var posted = await server.PostAsync(writer, Purchase("seed")))
        {
            posted.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 1)).ShouldBe(1);

        // Another tool's files: the seed's row with 'inf' and 'nan' totals, on two other days, registered in the manifest.
        var lake = engine.Services.Lake;
        var table = lake.Table("analytics.events")!;
        var seed = lake.Files("analytics.events").Single();
        using (var stager = lake.BeginStaging("other-tool"))
        {
            foreach (var (day, value) in new[] { ("2025-11-09", "inf"), ("2025-11-10", "nan") })
            {
                var path = stager.NextPath();
                using var db = new DuckDBConnection("DataSource=:memory:");
                db.Open();
                using var cmd = db.CreateCommand();
                cmd.CommandText = $"COPY (SELECT * REPLACE ('{value}'::DOUBLE AS order_total, event_ts + INTERVAL {(day == "2025-11-09" ? 1 : 2)} DAY AS event_ts, 'x-{value}' AS event_id) FROM read_parquet('{seed}')) TO '{path}' (FORMAT parquet)";
                cmd.ExecuteNonQuery();
                stager.AddWritten(table, day, path, 1);
            }

            lake.Commit(stager);
        }

        var (status, byDay) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-08&to=2025-11-11&group_by=day");
        status.ShouldBe(200);
        var revenue = byDay.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("key").GetString()!, r => r.GetProperty("revenue"));
        revenue["2025-11-08"].GetDouble().ShouldBe(10.0);
        revenue["2025-11-09"].ToString().ShouldBe("Infinity");
        revenue["2025-11-10"].ToString().ShouldBe("NaN");

        // `sluice query --format json` formats the same values as text too.
        var json = QueryResultFormatter.Format(engine.Services.Query.Query("SELECT event_id, order_total FROM analytics.events ORDER BY event_id"), QueryFormat.Json);
        var rows = JsonDocument.Parse(json).RootElement.EnumerateArray().Select(r => r.GetProperty("order_total").ToString()).ToList();
        rows.ShouldBe(["10", "Infinity", "NaN"]);
    }

    [Fact]
    public async Task A_control_character_in_any_query_parameter_is_a_400_naming_it()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var admin = server.Token("ops", TokenRole.Admin);
        var reader = server.Token("acme", TokenRole.Reader);

        foreach (var (token, query, parameter) in new[]
        {
            (admin, "/v1/metrics?from=2025-11-08&to=2025-11-09&tenant=acme%00", "tenant"),
            (reader, "/v1/metrics?from=2025-11-01%00&to=2025-11-09", "from"),
            (reader, "/v1/metrics?from=2025-11-01&to=2025-11-09&group_by=day%0A", "group_by"),
            (reader, "/v1/metrics?from=2025-11-01&to=2025-11-09&x%01=1", "x?"),
            (null!, "/healthz?probe=%1F", "probe"),
        })
        {
            var (status, body) = await server.GetJsonAsync(token, query);
            status.ShouldBe(400, query);
            body.GetProperty("parameter").GetString().ShouldBe(parameter, query);
            body.GetProperty("error").GetString()!.ShouldContain("control character");
        }

        (await server.GetJsonAsync(admin, "/v1/metrics?from=2025-11-08&to=2025-11-09&tenant=acme")).Status.ShouldBe(200);
    }
}
