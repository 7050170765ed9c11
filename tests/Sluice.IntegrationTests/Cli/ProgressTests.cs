using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>A long <c>run --once</c> shows how far it is with the time left; piped, as plain periodic lines (issue 19).</summary>
public sealed class ProgressTests
{
    [Fact]
    public async Task Run_once_over_a_large_drop_prints_files_done_of_the_total_with_an_eta()
    {
        using var data = new TempFolder();
        var generate = await SluiceProcess.RunAsync(data.Path, "generate", "vehicle-files", "--files", "120", "--events-per-file", "2000", "--seed", "5", "--now", "2025-11-08T12:00:00Z");
        generate.Code.ShouldBe(0, generate.Err);

        using var run = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1" }, "run", "vehicle-files", "--once");
        (await run.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, run.Stderr);

        var lines = run.Stdout.Split('\n').Where(l => l.StartsWith("run vehicle-files: ", StringComparison.Ordinal)).ToList();
        lines.Count.ShouldBeGreaterThan(1, run.Stdout);
        // The total is the files waiting when the count began (some may be done within the first tenth of a second).
        lines.ShouldAllBe(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^run vehicle-files: \d+/\d+ \(files\) \d+%"));
        lines.ShouldContain(l => l.Contains(", eta "));
        System.Text.RegularExpressions.Regex.IsMatch(lines[^1], @"^run vehicle-files: (\d+)/\1 \(files\) 100%").ShouldBeTrue(lines[^1]);
    }
}
