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

        await demo.WaitForOutputAsync("Ctrl-C stops cleanly.", TimeSpan.FromSeconds(30));
        await demo.WaitForOutputAsync("landed  vehicles_events_", TimeSpan.FromSeconds(30));
        await demo.WaitForOutputAsync("job     vehicle-files/daily-summary: recomputed", TimeSpan.FromSeconds(30));
        demo.Stdout.ShouldContain("./sluice query");
        // Every printed command names the data folder when it is not the default one of the working directory.
        await demo.WaitForOutputAsync("./sluice tokens list --data .", TimeSpan.FromSeconds(30));
        demo.Stdout.ShouldNotContain("./sluice query \"");

        var query = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) > 0 AS ok FROM reports.daily_summary", "--format", "csv");
        query.Out.ShouldBe("ok\ntrue\n");

        demo.Interrupt();
        (await demo.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, demo.Stderr);
        demo.Stdout.ShouldContain("stopped: ");
        Directory.EnumerateFiles(Path.Combine(data.Path, "vehicle-files", "processing")).ShouldBeEmpty("a clean stop leaves nothing half-done");
    }
}
