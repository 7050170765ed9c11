using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Examples;

/// <summary>
/// recipes/examples/http-lookup-cdc-to-postgres, run by <c>./sluice run</c> against the real Postgres: products mirrored
/// by CDC (snapshot, then a product created while it runs), views posted over HTTP and joined with them.
/// </summary>
public sealed class HttpLookupCdcToPostgresTests
{
    /// <summary>Creating a slot waits for every transaction open on the shared server to end: over a minute on a loaded machine.</summary>
    internal const int SlotCreation = 240;

    [Fact]
    public async Task Views_are_joined_with_the_cdc_mirrored_products_including_one_created_while_running_and_an_unknown_product_is_dead_lettered()
    {
        var slot = $"sluice_ex_{Guid.NewGuid():N}"[..24];
        await using var world = await ExampleWorld.CreateAsync("http-lookup-cdc-to-postgres", ("slot: example_products", $"slot: {slot}"), ("wait_timeout: 30s", "wait_timeout: 20s"));
        await world.ExecuteAsync("""
            CREATE TABLE products (product_id integer PRIMARY KEY, name text NOT NULL, category text);
            INSERT INTO products VALUES (1, 'Kettle', 'kitchen'), (2, 'Lamp', NULL);
            """);
        using var engine = new Engine();
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("shop", TokenRole.Writer, null).Token;
        using var run = SluiceProcess.Start(engine.DataRoot, world.Env, "run", world.RecipeFolder);
        var address = await TenantAnalyticsDiskFullTests.ServingAtAsync(run);

        await ExampleWorld.WaitForAsync(() => world.RowsAsync("SELECT product_id, name FROM dim.products ORDER BY product_id"), ["1|Kettle", "2|Lamp"], "the snapshot mirrored", run, seconds: SlotCreation);
        await world.ExecuteAsync("INSERT INTO products VALUES (3, 'Desk', 'office')");
        await PostAsync(address, token, """
            {"view_id": "v1", "viewed_at": "2026-03-01T10:00:00Z", "product_id": 1, "user_id": "u1"}
            {"view_id": "v2", "viewed_at": "2026-03-01T10:01:00Z", "product_id": 2, "user_id": "u1"}
            {"view_id": "v3", "viewed_at": "2026-03-01T10:02:00Z", "product_id": 3, "user_id": "u2"}
            {"view_id": "v4", "viewed_at": "2026-03-01T10:03:00Z", "product_id": 99, "user_id": "u2"}
            """);

        await ExampleWorld.WaitForAsync(() => world.RowsAsync("SELECT view_id, product_id, product_name, product_category, user_id FROM analytics.views ORDER BY view_id"), [
            "v1|1|Kettle|kitchen|u1",
            "v2|2|Lamp|NULL|u1",
            "v3|3|Desk|office|u2",
        ], "the views joined with their products", run);
        var letter = engine.Services.DeadLetters.List("step:http-lookup-cdc-to-postgres/views/steps[0]:lookup").ShouldHaveSingleItem();
        letter.Reason.ShouldBe("lookup: no products row with product_id = 99 after waiting 20 s");
        letter.Payload!.ShouldContain("\"view_id\":\"v4\"");

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
    }

    private static async Task PostAsync(Uri address, string token, string ndjson)
    {
        using var client = new HttpClient { BaseAddress = address };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/views/events") { Content = new StringContent(ndjson, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(request);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
    }
}
