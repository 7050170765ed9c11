using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Steps;

/// <summary>A recipe built from YAML only: HTTP events -> filter -> map -> hash_pii -> dedup -> lake, run by <c>./sluice run</c>.</summary>
public sealed class StepsRecipeTests
{
    internal const string Recipe = """
        name: orders-steps
        pipelines:
          orders:
            source:
              type: http
              stream: orders
              table: orders
              schemas: { 1: order.v1.yaml }
              time_field: ordered_at
              batch_linger: 50ms
            steps:
              - type: filter
                where: "status <> 'test'"
              - type: map
                cast: { qty: integer }
                derive:
                  total: "CAST(qty AS INTEGER) * price"
                  email_domain: "split_part(customer_email, '@', 2)"
              - type: hash_pii
                fields: [customer_email]
                key_env: ORDERS_PII_KEY
              - type: dedup
                key: [order_ref]
                window: 1h
            sinks:
              - type: lake
                zone: shop
                partition_by: ordered_at
        """;

    internal const string Schema = """
        version: 1
        fields:
          ordered_at: timestamp
          status: string
          order_ref: string
          qty: string
          price: double
          customer.email: {type: string, required: false}
        """;

    internal static string WriteRecipe(TempFolder temp, string recipe = Recipe)
    {
        var folder = temp.Sub("orders-steps");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), recipe);
        File.WriteAllText(Path.Combine(folder, "order.v1.yaml"), Schema);
        return folder;
    }

    [Fact]
    public async Task Http_events_are_filtered_mapped_hashed_and_deduplicated_into_the_lake_and_a_bad_row_is_dead_lettered_with_its_reason()
    {
        using var engine = new Engine();
        using var temp = new TempFolder();
        var folder = WriteRecipe(temp);
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("shop", TokenRole.Writer, null).Token;
        var env = new Dictionary<string, string> { ["ORDERS_PII_KEY"] = "orders-key" };
        using var run = SluiceProcess.Start(engine.DataRoot, env, "run", folder, "--port", "0");
        var address = await TenantAnalyticsDiskFullTests.ServingAtAsync(run);

        const string events = """
            {"ordered_at": "2026-03-01T10:00:00Z", "status": "paid", "order_ref": "A", "qty": "2", "price": 1.5, "customer": {"email": "ann@x.io"}}
            {"ordered_at": "2026-03-01T10:01:00Z", "status": "test", "order_ref": "T", "qty": "1", "price": 9}
            {"ordered_at": "2026-03-01T10:02:00Z", "status": "paid", "order_ref": "C", "qty": "many", "price": 2}
            {"ordered_at": "2026-03-01T10:03:00Z", "status": "paid", "order_ref": "A", "qty": "3", "price": 1.5}
            {"ordered_at": "2026-03-01T10:04:00Z", "status": "paid", "order_ref": "B", "qty": "4", "price": 0.5, "customer": {"email": "bob@y.org"}}
            """;
        using (var client = new HttpClient { BaseAddress = address })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/orders/events") { Content = new StringContent(events, Encoding.UTF8) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await client.SendAsync(request);
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        }

        var until = DateTime.UtcNow.AddSeconds(60);
        while (Count(engine, "SELECT count(*) FROM shop.orders") != 2)
        {
            DateTime.UtcNow.ShouldBeLessThan(until, $"the lake did not get the 2 good orders within 60 s: {run.Stderr}");
            await Task.Delay(50);
        }

        var rows = engine.Services.Query.Query("SELECT order_ref, qty, total, email_domain, customer_email FROM shop.orders ORDER BY order_ref").Rows;
        var hasher = new PiiHasher(Encoding.UTF8.GetBytes("orders-key"));
        rows.Select(r => (string)r[0]!).ShouldBe(["A", "B"]);
        rows.Select(r => Convert.ToInt64(r[1], System.Globalization.CultureInfo.InvariantCulture)).ShouldBe([2L, 4L]);
        rows.Select(r => Convert.ToDouble(r[2], System.Globalization.CultureInfo.InvariantCulture)).ShouldBe([3.0, 2.0]);
        rows.Select(r => (string)r[3]!).ShouldBe(["x.io", "y.org"]);
        rows.Select(r => (string)r[4]!).ShouldBe([hasher.Hash("ann@x.io"), hasher.Hash("bob@y.org")]);

        var letter = engine.Services.DeadLetters.List("step:orders-steps/orders/steps[1]:map").ShouldHaveSingleItem();
        letter.Reason.ShouldContain("Could not convert string 'many' to INT");
        letter.Payload!.ShouldContain("\"order_ref\":\"C\"");

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
    }

    [Fact]
    public async Task Validate_reports_a_bad_expression_with_file_line_and_key_before_anything_runs()
    {
        using var temp = new TempFolder();
        var folder = WriteRecipe(temp, Recipe.Replace("\"CAST(qty AS INTEGER) * price\"", "\"CAST(qty AS INTEGER) * \"", StringComparison.Ordinal));
        var (code, output, error) = await SluiceProcess.RunAsync(temp.Path, "validate", folder);

        code.ShouldBe(1, output + error);
        (output + error).ShouldContain("recipe.yaml:17: pipelines.orders.steps[1].derive.total: map: not a SQL expression: syntax error");
    }

    private static long Count(Engine engine, string sql)
    {
        try
        {
            return engine.Count(sql);
        }
        catch (Core.SluiceException)
        {
            return -1;
        }
    }
}
