using Microsoft.Playwright;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>
/// The console's dead-letter and jobs pages against the operator routes (<c>/api/deadletters</c>, <c>/api/jobs</c>,
/// <c>/api/backfills</c>) of a real <c>sluice run vehicle-files</c>: fix a quarantined record in the browser and replay
/// it into the lake, and backfill the daily summary watching its progress to the end.
/// </summary>
public sealed class ConsoleOperatorBrowserTests(ConsoleFixture fixture) : IClassFixture<ConsoleFixture>
{
    [Fact]
    public async Task A_quarantined_record_edited_and_replayed_in_the_browser_lands_in_the_lake()
    {
        var type = Path.Combine(fixture.Data, "fleet.yaml");
        await File.WriteAllTextAsync(type, """
            name: fleet_events
            pattern: "fleet_*.json"
            root_key: fleet
            table: raw_data.fleet_events
            event_time: event_time
            on_invalid: quarantine_rows
            fields:
              vehicle_id: string
              event_time: timestamp
              event_source: string
              event_type: { type: string, required: true }
            """);
        var added = await SluiceProcess.RunAsync(fixture.Data, "filetypes", "add", "vehicle-files", type);
        added.Code.ShouldBe(0, added.Err);
        VehicleFiles.Write(Path.Combine(fixture.Data, "vehicle-files", "incoming"), "fleet_1.json", """
            {"fleet": [
            {"vehicle_id": "f1", "event_time": "2024-05-01T10:00:00Z", "event_source": "sensor", "event_type": "start"},
            {"vehicle_id": "f2", "event_time": "2024-05-01T11:00:00Z", "event_source": "sensor"}
            ]}
            """);

        var page = await fixture.PageAsync();
        await fixture.LogInAsync(page, "/ui/deadletters?recipe=vehicle-files&status=pending");
        var row = page.Locator("tr[data-letter]", new PageLocatorOptions { HasText = "event_type" });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await row.CountAsync() == 0)
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the quarantined record shows on the dead-letters page");
            await Task.Delay(500);
            await page.ReloadAsync();
        }

        await row.ClickAsync();
        var raw = await page.InputValueAsync("#raw");
        raw.ShouldContain("\"f2\"");
        await page.FillAsync("#raw", raw.Replace("\"sensor\"", "\"sensor\", \"event_type\": \"stop\"", StringComparison.Ordinal));
        await page.FillAsync("#note", "event_type was missing: the vehicle stopped");
        await page.ClickAsync("#save-edit");
        await page.Locator("#letter-result", new PageLocatorOptions { HasText = "Saved" }).WaitForAsync();
        (await page.InnerTextAsync("#letter")).ShouldContain("event_type was missing");
        await page.ClickAsync("#replay-one");
        await page.Locator("#letter-result", new PageLocatorOptions { HasText = "Replayed: 1" }).WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        (await page.InnerTextAsync("#letter h2")).ShouldContain("replayed");
        await ConsoleFixture.ScreenshotAsync(page, "deadletters-replayed-1280x800");

        var landed = await SluiceProcess.RunAsync(fixture.Data, "query", "SELECT vehicle_id, event_type FROM raw_data.fleet_events ORDER BY vehicle_id", "--format", "csv");
        landed.Code.ShouldBe(0, landed.Err);
        landed.Out.ShouldContain("f2,stop");
    }

    [Fact]
    public async Task A_backfill_started_in_the_browser_shows_its_progress_to_the_end()
    {
        var page = await fixture.PageAsync();
        await fixture.LogInAsync(page, "/ui/jobs");
        var form = page.Locator("form.backfill[data-key='vehicle-files/daily-summary']");
        await form.Locator("input[name=from]").FillAsync("2024-05-01");
        await form.Locator("input[name=to]").FillAsync("2024-05-03");
        await form.Locator("button[type=submit]").ClickAsync();
        await page.Locator("#backfill[data-state='succeeded']").WaitForAsync(new LocatorWaitForOptions { Timeout = 60_000 });
        (await page.InnerTextAsync("#backfill-state")).ShouldContain("3 of 3 days done");
        await ConsoleFixture.ScreenshotAsync(page, "jobs-backfill-1280x800");

        await page.ClickAsync("tr[data-job='vehicle-files/daily-summary'] button.history");
        await page.Locator("#job-history td", new PageLocatorOptions { HasText = "2024-05-03" }).First.WaitForAsync();
    }
}
