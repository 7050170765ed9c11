using Microsoft.Playwright;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>The console in headless Chromium against a real <c>sluice run vehicle-files</c>: one browser for the class.</summary>
public sealed class ConsoleBrowserTests(ConsoleFixture fixture) : IClassFixture<ConsoleFixture>
{
    private static readonly (string Name, string Path, string Ready)[] Pages =
    [
        ("overview", "/ui/", "[data-pipeline='vehicle-files/ingest'] svg"),
        ("pipeline", "/ui/pipeline/vehicle-files/ingest", "text=Sinks"),
        ("files", "/ui/files", "text=File types"),
        ("cdc", "/ui/cdc", "h1"),
        ("deadletters", "/ui/deadletters", "h1"),
        ("jobs", "/ui/jobs", "text=Models"),
        ("tokens", "/ui/tokens", "text=All tokens"),
    ];

    [Fact]
    public async Task Login_form_leads_to_the_overview_graph_with_the_pipelines_counts()
    {
        var page = await fixture.PageAsync();
        await page.GotoAsync("/ui/");
        await page.WaitForURLAsync("**/ui/login?next=%2Fui%2F");
        await page.FillAsync("#token", fixture.ReaderToken);
        await page.ClickAsync("button[type=submit]");
        (await page.InnerTextAsync(".error")).ShouldContain("need a process-wide admin token");

        await page.FillAsync("#token", fixture.AdminToken);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(u => u.EndsWith("/ui/", StringComparison.Ordinal));
        var graph = page.Locator("[data-pipeline='vehicle-files/ingest']");
        await graph.Locator("text=ingest · files").WaitForAsync();
        // The source node counts the three good records; the lake sink committed them; the after-load job ran.
        ((await graph.TextContentAsync()) ?? "").ShouldSatisfyAllConditions(
            t => t.ShouldContain("3 in"),
            t => t.ShouldContain("3 out"),
            t => t.ShouldContain("daily-summary"));
        ((await graph.Locator("[data-node='src']").GetAttributeAsync("class")) ?? "").ShouldContain("h-ok");
        (await page.ContentAsync()).ShouldNotContain(fixture.AdminToken);
        var cookie = (await page.Context.CookiesAsync()).Single(c => c.Name == "sluice_session");
        cookie.HttpOnly.ShouldBeTrue();
        cookie.SameSite.ShouldBe(SameSiteAttribute.Strict);
        cookie.Value.ShouldNotContain(fixture.AdminToken);

        await page.ClickAsync("#logout");
        await page.WaitForURLAsync("**/ui/login");
        await page.GotoAsync("/ui/files");
        await page.WaitForURLAsync("**/ui/login?next=%2Fui%2Ffiles");
    }

    [Fact]
    public async Task Files_page_shows_the_failed_file_with_its_reason_and_where()
    {
        var page = await fixture.PageAsync();
        await fixture.LogInAsync(page, "/ui/files");
        var row = page.Locator($"tr[data-failed='{ConsoleFixture.BadFile}']");
        await row.WaitForAsync();
        var text = await row.InnerTextAsync();
        text.ShouldContain("event_time");
        text.ShouldContain("record 1");
        (await page.Locator("text=vehicles_events_*.json").CountAsync()).ShouldBe(1);
    }

    [Fact]
    public async Task Pipeline_page_lists_the_real_batches_with_each_sinks_outcome()
    {
        var page = await fixture.PageAsync();
        await fixture.LogInAsync(page, "/ui/pipeline/vehicle-files/ingest");
        var rows = page.Locator("tr.batch");
        await rows.First.WaitForAsync();
        // The two dropped files, each a batch: the good one's 3 records committed to the lake, the bad one failed there.
        var texts = await rows.AllInnerTextsAsync();
        texts.Count.ShouldBe(2, string.Join("\n", texts));
        var good = texts.Single(t => t.Contains("committed", StringComparison.Ordinal));
        good.ShouldContain("lake");
        good.Split('\t')[1].Trim().ShouldBe("3", good);
        texts.Single(t => t.Contains("failed", StringComparison.Ordinal)).ShouldContain("lake");
        (await page.Locator("tr.batch span[title*='event_time']").CountAsync()).ShouldBe(1, "the failed outcome carries the file's reason");
    }

    [Fact]
    public async Task Tokens_page_creates_a_token_shows_its_secret_once_and_revokes_it()
    {
        var page = await fixture.PageAsync();
        await fixture.LogInAsync(page, "/ui/tokens");
        await page.FillAsync("input[name=name]", "from the browser test");
        await page.SelectOptionAsync("select[name=role]", "reader");
        await page.ClickAsync("#create-token button[type=submit]");
        var secret = (await page.Locator("#new-secret code").TextContentAsync())!;
        secret.ShouldStartWith("sk_");
        var id = secret.Split('_')[1];
        (await fixture.SendAsync(HttpMethod.Get, "/api/files", bearer: secret)).Status.ShouldBe(System.Net.HttpStatusCode.Forbidden, "the new reader token works, and is not an admin's");

        await page.ReloadAsync();
        await page.Locator($"tr[data-token='{id}']").WaitForAsync();
        (await page.ContentAsync()).ShouldNotContain(secret, customMessage: "the secret is shown once, never again");

        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.ClickAsync($"tr[data-token='{id}'] button.revoke");
        await page.Locator($"tr[data-token='{id}'] button.revoke").WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Detached });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await fixture.SendAsync(HttpMethod.Get, "/api/files", bearer: secret)).Status != System.Net.HttpStatusCode.Unauthorized)
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "a revoked token is refused (within a second on a quiet machine)");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Every_page_draws_at_desktop_and_phone_width()
    {
        foreach (var (width, height, label) in new[] { (1280, 800, "1280x800"), (390, 844, "390x844") })
        {
            var page = await fixture.PageAsync(width, height);
            await fixture.LogInAsync(page);
            foreach (var (name, path, ready) in Pages)
            {
                await page.GotoAsync(path);
                await page.Locator(ready).First.WaitForAsync();
                (await page.Locator("text=This page failed to draw").CountAsync()).ShouldBe(0, $"{name} at {label}");
                // Nothing wider than the screen but the tables and graphs, which scroll inside their own boxes.
                var overflow = await page.EvaluateAsync<int>("document.documentElement.scrollWidth - window.innerWidth");
                overflow.ShouldBeLessThanOrEqualTo(0, $"{name} at {label} scrolls sideways");
                await ConsoleFixture.ScreenshotAsync(page, $"{name}-{label}");
            }

            await page.Context.CloseAsync();
        }
    }
}
