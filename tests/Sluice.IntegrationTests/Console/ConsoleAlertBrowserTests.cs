using Microsoft.Playwright;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>
/// The Overview page's "Firing alerts" panel against a real <c>sluice run</c> of vehicle-files whose recipe declares a
/// dead-letters alert checked every 200 ms: a rejected file makes it fire, and the operator sees its name and message.
/// </summary>
public sealed class ConsoleAlertBrowserTests
{
    private const string Alerts = """

        alerts:
          check_every: 200ms
          rules:
            bad-files: {kind: dead_letters, more_than: 0, within: 1h, severity: critical}
        """;

    [Fact]
    public async Task An_alert_that_fires_shows_its_name_severity_and_message_on_the_overview_page()
    {
        using var data = new TempFolder("sluice-console-alert");
        using var recipes = new TempFolder("sluice-console-alert-recipe");
        var recipe = recipes.Sub("vehicle-files");
        SalesWarehouse.WarehouseHarness.CopyDirectory(TestPaths.Recipe("vehicle-files"), recipe);
        var yaml = await File.ReadAllTextAsync(Path.Combine(recipe, "recipe.yaml"));
        await File.WriteAllTextAsync(Path.Combine(recipe, "recipe.yaml"), yaml[..yaml.IndexOf("\nalerts:", StringComparison.Ordinal)] + Alerts);
        var created = await SluiceProcess.RunAsync(data.Path, "tokens", "create", "--role", "admin", "--tenant", "ops");
        created.Code.ShouldBe(0, created.Err);
        var token = created.Out.Trim().Split('\n')[^1];

        using var run = SluiceProcess.Start(data.Path, "run", recipe, "--port", "0");
        var url = (await WaitForFileAsync(data.Path, "vehicle-files", run, TimeSpan.FromSeconds(120))).Url;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await ConsoleFixture.LaunchChromiumAsync(playwright);
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, BaseURL = url });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/ui/");
        await page.WaitForURLAsync("**/ui/login**");
        await page.FillAsync("#token", token);
        await page.ClickAsync("button[type=submit]");
        await page.Locator("h2", new PageLocatorOptions { HasText = "Firing alerts" }).WaitForAsync();
        (await page.InnerTextAsync("main")).ShouldContain("None: all 1 declared alert(s) are ok.");

        VehicleFiles.Write(Path.Combine(data.Path, "vehicle-files", "incoming"), "vehicles_events_bad.json", "not json at all");
        // The overview redraws every 5 s; the alert fires within a check (200 ms) of the file's rejection.
        var row = page.Locator("tr[data-alert='vehicle-files/bad-files']");
        await row.WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        var text = await row.InnerTextAsync();
        text.ShouldContain("critical");
        text.ShouldContain("dead letters of vehicle-files: 1 new in the last 1 h, more than 0");
        await ConsoleFixture.ScreenshotAsync(page, "overview-alert-firing-1280x800");

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
    }
}
