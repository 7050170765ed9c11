using System.Text.Json;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Serving.OpenApi;

namespace Sluice.IntegrationTests.Api;

/// <summary>The OpenAPI document of a running server, and the reference page that renders it.</summary>
public sealed class OpenApiDocumentTests
{
    [Fact]
    public async Task The_document_lists_every_mapped_route_with_who_may_call_it()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var doc = await DocumentAsync(server);
        var paths = doc.GetProperty("paths");

        var routes = server.Host.Server!.Routes;
        routes.Count.ShouldBeGreaterThan(8);
        foreach (var (method, pattern) in routes)
        {
            paths.TryGetProperty(RouteDocument.Path(pattern), out var item).ShouldBeTrue($"{method} {pattern} is not in the document");
            item.TryGetProperty(method.ToLowerInvariant(), out _).ShouldBeTrue($"{method} {pattern} is not in the document");
        }

        doc.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("scheme").GetString().ShouldBe("bearer");
        Roles(paths, "/v1/streams/ecommerce/events", "post").ShouldBe(["writer"]);
        Roles(paths, "/v1/metrics", "get").ShouldBe(["reader", "admin"]);
        Roles(paths, "/api/status", "get").ShouldBe(["admin"]);
        paths.GetProperty("/healthz").GetProperty("get").GetProperty("security").GetArrayLength().ShouldBe(0);
        paths.GetProperty("/openapi/{documentName}.json").GetProperty("get").GetProperty("summary").GetString().ShouldNotBeNullOrEmpty();
    }

    [Fact]
    public async Task Ingest_bodies_are_typed_from_the_recipe_schemas()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var body = (await DocumentAsync(server)).GetProperty("paths").GetProperty("/v1/streams/ecommerce/events").GetProperty("post").GetProperty("requestBody");

        var json = body.GetProperty("content").GetProperty("application/json").GetProperty("schema");
        var versions = json.GetProperty("oneOf")[0].GetProperty("oneOf").EnumerateArray().ToList();
        versions.Count.ShouldBe(2);
        var v2 = versions[1];
        v2.GetProperty("properties").GetProperty("schema_version").GetProperty("enum")[0].GetInt32().ShouldBe(2);
        Strings(v2.GetProperty("required")).ShouldBe(["schema_version", "event_id", "event_type", "event_ts", "customer"], ignoreOrder: true);
        var props = v2.GetProperty("properties");
        props.GetProperty("event_ts").GetProperty("format").GetString().ShouldBe("date-time");
        Strings(props.GetProperty("event_type").GetProperty("enum")).ShouldBe(["page_view", "add_to_cart", "purchase", "refund"]);
        props.GetProperty("customer").GetProperty("properties").GetProperty("email").GetProperty("description").GetString()!.ShouldContain("Personal data");
        Strings(props.GetProperty("customer").GetProperty("required")).ShouldBe(["id"]);
        var total = props.GetProperty("order").GetProperty("properties").GetProperty("total");
        total.GetProperty("type").GetString().ShouldBe("number");
        total.GetProperty("description").GetString()!.ShouldContain("event_type=purchase|refund");
        var item = props.GetProperty("items").GetProperty("items");
        item.GetProperty("properties").GetProperty("qty").GetProperty("type").GetString().ShouldBe("integer");
        props.GetProperty("session").GetProperty("properties").TryGetProperty("device", out _).ShouldBeTrue();
        versions[0].GetProperty("properties").TryGetProperty("session", out _).ShouldBeFalse();
        json.GetProperty("oneOf")[1].GetProperty("type").GetString().ShouldBe("array");
        body.GetProperty("content").TryGetProperty("application/x-ndjson", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task The_reference_page_renders_the_document_from_the_process_itself()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        using var page = await server.Client.GetAsync("/docs");
        page.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        page.Content.Headers.ContentType!.MediaType.ShouldBe("text/html");
        var html = await page.Content.ReadAsStringAsync();
        html.ShouldContain("spec-url=\"/openapi/v1.json\"");
        html.ShouldContain("src=\"/docs/rapidoc-min.js\"");
        page.Headers.GetValues("Content-Security-Policy").Single().ShouldContain("default-src 'self'");
        html.ShouldNotContain("http://");
        html.ShouldNotContain("https://");

        using var script = await server.Client.GetAsync("/docs/rapidoc-min.js");
        script.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        (await script.Content.ReadAsByteArrayAsync()).Length.ShouldBeGreaterThan(100_000);
    }

    private static async Task<JsonElement> DocumentAsync(TenantAnalyticsServer server) =>
        JsonDocument.Parse(await server.Client.GetStringAsync("/openapi/v1.json")).RootElement.Clone();

    private static List<string> Roles(JsonElement paths, string path, string method) =>
        Strings(paths.GetProperty(path).GetProperty(method).GetProperty("security")[0].GetProperty("bearer"));

    private static List<string> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString()!).ToList();
}
