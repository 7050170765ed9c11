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
        var host = new Core.Hosting.RecipeHost(new Core.Recipes.RecipeLoader(Components.Create()).Load(recipe), engine.Services);
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
}
