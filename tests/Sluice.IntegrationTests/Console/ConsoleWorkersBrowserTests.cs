using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Playwright;
using Sluice.Cluster;
using Sluice.Core.Metadata;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>
/// The console's Workers page on a real <c>sluice run --cluster</c> worker (a three-node JetStream cluster of the test's
/// own, a shared metadata store of its own): the worker itself, green, beside two workers another process registered in
/// the same store, one holding partitions and one silent past the limit (lost), and the pipeline's consumer lag.
/// </summary>
public sealed class ConsoleWorkersBrowserTests
{
    [Fact]
    public async Task The_workers_page_shows_each_worker_with_health_and_holds_and_the_lag_per_pipeline()
    {
        using var temp = new TempFolder("sluice-console-workers");
        await using var nats = await NatsTestCluster.StartAsync(temp.Sub("nats"));
        var cluster = "w" + Guid.NewGuid().ToString("N")[..10];
        var postgres = $"postgres://{ServerSettings.PgUser}:{ServerSettings.PgPassword}@{ServerSettings.PgHost}:{ServerSettings.PgPort}/{ServerSettings.PgDatabase}";
        var env = new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_NATS"] = nats.Urls, ["SLUICE_CLUSTER_POSTGRES"] = postgres, ["SLUICE_CLUSTER_NAME"] = cluster, ["SLUICE_WORKER_ID"] = "worker-a",
        };
        var recipe = RecipeVariant.Create(temp, "tenant-analytics",
            ("      - type: lake                     # the embedded warehouse: analytics.events, analytics.event_items\n        zone: analytics\n        partition_by: event_ts\n",
             $"      - type: postgres\n        schema: {cluster}\n        connection: \"{ServerSettings.PostgresConnectionString}\"\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]\n"));
        var data = Directory.CreateDirectory(temp.Sub("worker-a")).FullName;
        try
        {
            using var created = SluiceProcess.Start(data, env, "tokens", "create", "--role", "admin", "--tenant", "ops", "--cluster");
            (await created.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, created.Stderr);
            var token = created.Stdout.Trim().Split('\n')[^1];

            // Two workers of another process in the same store: one beating, holding partitions; one silent (lost).
            var store = MetadataStore.For(new Core.DataDirectory(temp.Path), SharedMetadata.Parse(postgres, cluster));
            var lost = new WorkerRegistry(store, new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(-5)), new WorkerInfo("worker-c", "node-c", 4343, 8083, "tenant-analytics", "1.0.0"), NullLoggerFactory.Instance);
            lost.Register();
            var other = new WorkerRegistry(store, TimeProvider.System, new WorkerInfo("worker-b", "node-b", 4242, 8082, "tenant-analytics", "1.0.0"), NullLoggerFactory.Instance);
            other.Register();
            other.SetHolding("partitions", ["0", "1", "2"]);
            other.SetHolding("job leases", ["tenant-analytics/nightly"]);

            using var run = SluiceProcess.Start(data, env, "run", recipe, "--cluster", "--port", "0");
            var url = (await WaitForFileAsync(data, "tenant-analytics", run, TimeSpan.FromSeconds(90))).Url;
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await ConsoleFixture.LaunchChromiumAsync(playwright);
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, BaseURL = url });
            context.SetDefaultTimeout(15_000);
            var page = await context.NewPageAsync();
            await page.GotoAsync("/ui/workers");
            await page.WaitForURLAsync("**/ui/login**");
            await page.FillAsync("#token", token);
            await page.ClickAsync("button[type=submit]");
            await page.WaitForURLAsync("**/ui/workers");

            // The other worker beats now (its holds are written with a beat) and every 2 s while the page is read, as a live one does.
            other.Heartbeat(null, [new PipelineLag("tenant-analytics/ecommerce", 0)]);
            using var beating = new CancellationTokenSource();
            var beats = other.RunAsync(() => (null, [new PipelineLag("tenant-analytics/ecommerce", 0)]), beating.Token);
            var self = page.Locator("tr[data-worker='worker-a']");
            await self.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
            (await self.InnerTextAsync()).ShouldContain("green");
            // The page shows what its last refresh read: worker-b's row is there from its registration, its holds from its
            // first beat on, so wait (the page refreshes every few seconds) until a refresh after that beat.
            var b = await page.Locator("tr[data-worker='worker-b']").InnerTextAsync();
            for (var until = DateTime.UtcNow.AddSeconds(90); !b.Contains("partitions 0, 1, 2", StringComparison.OrdinalIgnoreCase) && DateTime.UtcNow < until;)
            {
                await Task.Delay(250);
                b = await page.Locator("tr[data-worker='worker-b']").InnerTextAsync();
            }

            b.ShouldContain("node-b");
            b.ShouldContain("partitions 0, 1, 2");
            b.ShouldContain("job leases tenant-analytics/nightly");
            var c = await page.Locator("tr[data-worker='worker-c']").InnerTextAsync();
            c.ShouldContain("lost");
            c.ShouldContain("no heartbeat for");
            var lag = page.Locator("tr[data-lag='tenant-analytics/ecommerce']");
            await lag.WaitForAsync(new LocatorWaitForOptions { Timeout = 30_000 });
            (await lag.InnerTextAsync()).ShouldContain("0");
            await page.ReloadAsync();
            await self.WaitForAsync();
            await ConsoleFixture.ScreenshotAsync(page, "workers-1280x800");
            await beating.CancelAsync();
            await beats;

            (await run.StopAsync()).ShouldBe(0, run.Stderr);
            WorkerRegistry.List(store, TimeProvider.System).Single(w => w.Id == "worker-a").Health.ShouldBe("stopped", "a worker stopped cleanly says so");
        }
        finally
        {
            await using var connection = new Npgsql.NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await connection.OpenAsync();
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE; DROP SCHEMA IF EXISTS {cluster} CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
