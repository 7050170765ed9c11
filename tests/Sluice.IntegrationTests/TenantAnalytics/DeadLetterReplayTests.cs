using Sluice.Recipes;
using System.Net.Http.Headers;
using System.Text;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class DeadLetterReplayTests
{
    [Fact]
    public async Task A_rejected_event_replays_once_the_schema_accepts_it_and_lands_for_its_tenant()
    {
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics");
        await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
        {
            var writer = server.Token("rp", TokenRole.Writer);
            using var response = await server.PostAsync(writer, "{\"event_id\":\"w1\",\"schema_version\":1,\"event_type\":\"wishlist\",\"event_ts\":\"2025-11-08T10:00:00Z\",\"customer\":{\"id\":\"c\"}}\n{\"event_id\":\"bad\"", "application/x-ndjson");
            (await TenantAnalyticsServer.JsonAsync(response)).GetProperty("rejected").GetArrayLength().ShouldBe(2);
        }

        // The schema learns the new event type; the letter now passes and lands, the malformed one still fails.
        var schema = Path.Combine(recipe, "schemas", "ecommerce.v1.yaml");
        File.WriteAllText(schema, File.ReadAllText(schema).Replace("values: [page_view, add_to_cart, purchase, refund]", "values: [page_view, add_to_cart, purchase, refund, wishlist]", StringComparison.Ordinal));
        var letters = engine.Services.DeadLetters.List("http:tenant-analytics/ecommerce");
        var host = new Sluice.Hosting.RecipeHost(new Core.Recipes.RecipeLoader(RecipeComponents.Create()).Load(recipe), engine.Services);
        await using (host)
        {
            var replayer = host.HttpComponents.OfType<Core.DeadLetters.IDeadLetterReplayer>().Single();
            var wishlist = letters.Single(l => l.Reason.Contains("wishlist", StringComparison.Ordinal));
            replayer.CanReplay(wishlist).ShouldBeTrue();
            (await replayer.ReplayAsync(wishlist, CancellationToken.None)).ShouldBeNull();
            (await replayer.ReplayAsync(letters.Single(l => l != wishlist), CancellationToken.None))!.ShouldContain("malformed JSON");
            await host.RunOnceAsync(CancellationToken.None);
        }

        engine.Count("SELECT count(*) FROM analytics.events WHERE event_id = 'w1' AND tenant_id = 'rp' AND event_type = 'wishlist'").ShouldBe(1);
    }

    [Fact]
    public async Task Replay_beside_a_running_server_is_handed_to_it_and_the_event_lands()
    {
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics");
        var writer = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("rp", TokenRole.Writer, null).Token;
        const string Events = "{\"event_id\":\"w1\",\"schema_version\":1,\"event_type\":\"wishlist\",\"event_ts\":\"2025-11-08T10:00:00Z\",\"customer\":{\"id\":\"c\"}}\n{\"event_id\":\"bad\"";
        using (var first = await StartAsync(engine, recipe))
        {
            using var response = await PostAsync(first.Address, writer, Events);
            (await response.Content.ReadAsStringAsync()).ShouldContain("wishlist");
            (await first.Process.StopAsync()).ShouldBe(0);
        }

        // The schema learns the new event type and the server starts again; the replay, from another process, is
        // handed to it (it owns the landing log) instead of failing on the log's lock.
        var schema = Path.Combine(recipe, "schemas", "ecommerce.v1.yaml");
        File.WriteAllText(schema, File.ReadAllText(schema).Replace("values: [page_view, add_to_cart, purchase, refund]", "values: [page_view, add_to_cart, purchase, refund, wishlist]", StringComparison.Ordinal));
        using var second = await StartAsync(engine, recipe);
        var (code, stdout, stderr) = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "replay", "--all", "--source", "http:tenant-analytics");

        code.ShouldBe(1, "one letter still fails");
        stderr.ShouldContain("'tenant-analytics' is running");
        stdout.ShouldContain(": replayed");
        stdout.ShouldContain("still failing");
        stdout.ShouldContain("malformed JSON");
        stdout.ShouldContain("1 replayed, 1 still failing");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!Landed() && DateTime.UtcNow < deadline) { await Task.Delay(100); }
        engine.Count("SELECT count(*) FROM analytics.events WHERE event_id = 'w1' AND tenant_id = 'rp' AND event_type = 'wishlist'").ShouldBe(1);
        engine.Services.DeadLetters.List("http:tenant-analytics", Core.DeadLetters.DeadLetterStore.Pending, 10).Count.ShouldBe(1);
        Directory.GetFiles(Path.Combine(engine.DataRoot, "requests", "replay", "tenant-analytics")).ShouldBeEmpty();
        (await second.Process.StopAsync()).ShouldBe(0);

        bool Landed()
        {
            try
            {
                return engine.Count("SELECT count(*) FROM analytics.events WHERE event_id = 'w1'") > 0;
            }
            catch (Core.SluiceException)
            {
                return false; // no table before the first event lands
            }
        }
    }

    private sealed record Running(SluiceProcess Process, Uri Address) : IDisposable
    {
        public void Dispose() => Process.Dispose();
    }

    private static async Task<Running> StartAsync(Engine engine, string recipe)
    {
        var process = SluiceProcess.Start(engine.DataRoot, "run", recipe, "--port", "0");
        return new Running(process, await TenantAnalyticsDiskFullTests.ServingAtAsync(process));
    }

    private static async Task<HttpResponseMessage> PostAsync(Uri address, string token, string ndjson)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, "/v1/streams/ecommerce/events")) { Content = new StringContent(ndjson, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }
}
