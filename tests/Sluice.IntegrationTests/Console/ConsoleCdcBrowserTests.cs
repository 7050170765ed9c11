using Microsoft.Playwright;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>The CDC page beside a real Postgres: a <c>sluice cdc snapshot</c> shows as its progress row.</summary>
public sealed class ConsoleCdcBrowserTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_requested_snapshot_shows_on_the_cdc_page_with_its_rows_and_chunks()
    {
        await using var scenario = await CdcSnapshotScenario.CreateAsync(rows: 2000, snapshot: false);
        using var token = SluiceProcess.StartIn(scenario.RecipesRoot, scenario.DataRoot, scenario.Environment, "tokens", "create", "--role", "admin", "--tenant", "ops");
        (await token.WaitAsync(Patience)).ShouldBe(0, token.Stderr);
        var admin = token.Stdout.Trim().Split('\n')[^1];
        using var run = scenario.Run();
        try
        {
            var url = (await WaitForFileAsync(scenario.DataRoot, "snap", run, Patience)).Url;
            await CdcScenario.WaitUntilAsync(
                async () => run.HasExited || await scenario.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}' AND active") == 1,
                Patience, () => Task.FromResult(run.Stderr));

            using var snapshot = scenario.Snapshot("--table", "items", "--chunk-rows", "100");
            (await snapshot.WaitAsync(Patience)).ShouldBe(0, $"{snapshot.Stdout}\n{snapshot.Stderr}\n{run.Stderr}");

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await ConsoleFixture.LaunchChromiumAsync(playwright);
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, BaseURL = url });
            context.SetDefaultTimeout(15_000);
            var page = await context.NewPageAsync();
            await page.GotoAsync("/ui/cdc");
            await page.WaitForURLAsync("**/ui/login**");
            await page.FillAsync("#token", admin);
            await page.ClickAsync("button[type=submit]");
            await page.WaitForURLAsync(u => u.EndsWith("/ui/cdc", StringComparison.Ordinal));

            var row = page.Locator("tr[data-snapshot='1']");
            await row.WaitForAsync();
            // The page refreshes every 5 s; the row reaches its final figures once every sink committed the last chunk.
            var deadline = DateTime.UtcNow + Patience;
            string text;
            while (!(text = await row.InnerTextAsync()).Contains("done", StringComparison.Ordinal))
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, text);
                await Task.Delay(500);
                await page.ReloadAsync();
                await row.WaitForAsync();
            }

            var cells = text.Split('\t').Select(c => c.Trim()).ToList();
            cells.ShouldContain("snap/cdc");
            cells.ShouldContain(c => c.EndsWith("items", StringComparison.Ordinal), text);
            cells.Count(c => c == "2,000").ShouldBe(2, $"rows read of the total: {text}");
            cells.ShouldContain("20", $"chunks of 100 rows: {text}");
            (await row.Locator(".progress").GetAttributeAsync("title")).ShouldBe("100%");
            (await page.Locator("text=sluice_snap_" + scenario.Id).CountAsync()).ShouldBeGreaterThan(0, "the slot's row is there too");
            await ConsoleFixture.ScreenshotAsync(page, "cdc-snapshot-1280x800");
        }
        finally
        {
            await run.StopAsync();
        }
    }
}
