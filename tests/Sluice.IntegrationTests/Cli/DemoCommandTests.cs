using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

public sealed class DemoCommandTests
{
    [Fact]
    public async Task Demo_feeds_the_recipe_narrates_and_stops_cleanly_on_ctrl_c()
    {
        using var data = new TempFolder("sluice-demo");
        // Any free port: the docs test runs recipes on the default 7070 meanwhile.
        using var demo = SluiceProcess.Start(data.Path, "demo", "--interval", "1", "--port", "0");

        await demo.WaitForOutputAsync("Ctrl-C stops cleanly.", TimeSpan.FromSeconds(90));
        await demo.WaitForOutputAsync("landed  vehicles_events_", TimeSpan.FromSeconds(90));
        await demo.WaitForOutputAsync("job     vehicle-files/daily-summary: recomputed", TimeSpan.FromSeconds(90));
        demo.Stdout.ShouldContain("./sluice query");
        await demo.WaitForOutputAsync("./sluice tokens list --data ", TimeSpan.FromSeconds(90));

        var query = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) > 0 AS ok FROM reports.daily_summary", "--format", "csv");
        query.Out.ShouldBe("ok\ntrue\n");

        (await demo.StopAsync()).ShouldBe(0, demo.Stderr);
        demo.Stdout.ShouldContain("stopped: ");
        Directory.EnumerateFiles(Path.Combine(data.Path, "vehicle-files", "processing")).ShouldBeEmpty("a clean stop leaves nothing half-done");
    }

    [Fact]
    public async Task Demo_prints_the_console_with_an_admin_login_runs_sales_warehouse_and_every_hint_names_the_data_folder()
    {
        using var data = new TempFolder("sluice-demo-console");
        using var demo = SluiceProcess.Start(data.Path, "demo", "--interval", "1", "--port", "0");

        await demo.WaitForOutputAsync("admin token  sk_", TimeSpan.FromSeconds(60));
        var console = Regex.Match(demo.Stdout, @"console: (http://127\.0\.0\.1:\d+)/ui/");
        console.Success.ShouldBeTrue(demo.Stdout);
        var admin = Regex.Match(demo.Stdout, @"admin token  (sk_\S+)").Groups[1].Value;
        using (var http = new HttpClient { BaseAddress = new Uri(console.Groups[1].Value) })
        {
            // The printed token is a working admin login: the management routes take it.
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/status");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var status = await http.SendAsync(request);
            status.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
            (await http.GetAsync("/docs")).StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        }

        await demo.WaitForOutputAsync("job     sales-warehouse/daily: ", TimeSpan.FromSeconds(180));
        await demo.WaitForOutputAsync("./sluice models test sales-warehouse --data ", TimeSpan.FromSeconds(90));
        (await demo.StopAsync()).ShouldBe(0, demo.Stderr);

        // Every ./sluice line works from another folder: it names the data folder by its absolute path.
        var hints = demo.Stdout.Split('\n').Where(l => l.Contains("./sluice ", StringComparison.Ordinal)).ToList();
        hints.Count.ShouldBeGreaterThan(8);
        hints.ShouldAllBe(l => l.Contains($"--data {data.Path}", StringComparison.Ordinal));
        var marts = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) > 0 AS ok FROM mart.customer_ytd_spending", "--format", "csv");
        marts.Out.ShouldBe("ok\ntrue\n", marts.Err);
        var dimension = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) > 0 AS ok FROM dw.dim_customer", "--format", "csv");
        dimension.Out.ShouldBe("ok\ntrue\n", dimension.Err);
    }
}
