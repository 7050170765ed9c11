using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.PipelineTests;

/// <summary>
/// What <c>sluice test</c> says when a recipe does not produce what its fixture expects, and when a fixture is wrong:
/// exit 1 with the table, file, line and column, never a stack trace.
/// </summary>
public sealed class FixtureFailureTests
{
    [Fact]
    public async Task A_wrong_expectation_fails_with_a_diff_naming_table_row_and_column()
    {
        using var folder = new TempFolder();
        var recipe = CopyRecipe(folder);
        var summary = Path.Combine(recipe, "tests", "late-event", "expect", "summary-2.csv");
        File.WriteAllText(summary, File.ReadAllText(summary)
            .Replace("v1,2026-01-10,2026-01-10T20:00:00Z,fault", "v1,2026-01-10,2026-01-10T20:00:00Z,stop", StringComparison.Ordinal)
            + "v7,2026-01-12,2026-01-12T09:00:00Z,start\n");

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stdout.ShouldContain("vehicle-files/late-event: FAILED");
        stdout.ShouldContain("step 2, table reports.daily_summary");
        stdout.ShouldContain("1 changed, 1 missing, 0 unexpected row(s)");
        stdout.ShouldContain("summary-2.csv:2 (vehicle_id=v1, day=2026-01-10): last_event_type expected stop, actual fault");
        stdout.ShouldContain("missing ");
        stdout.ShouldContain("summary-2.csv:6: vehicle_id=v7");
        stdout.ShouldContain("vehicle-files: 0 of 1 case(s) passed");
        stderr.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task A_missing_input_file_is_named_with_the_line_of_case_yaml()
    {
        using var folder = new TempFolder();
        var recipe = CopyRecipe(folder);
        EditCase(recipe, "- files: input/late", "- files: input/later");

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stderr.ShouldContain("case.yaml:14: steps[1].inputs[0].files: no file or folder 'input/later' in the case folder");
    }

    [Fact]
    public async Task An_unknown_pipeline_or_table_is_named_with_the_line_of_case_yaml()
    {
        using var folder = new TempFolder();
        var recipe = CopyRecipe(folder);
        EditCase(recipe, "- files: input/day1", "- files: input/day1\n        pipeline: ingestion");

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stdout.ShouldContain("case.yaml:4: recipe 'vehicle-files' has no pipeline 'ingestion' (pipelines: ingest)");

        recipe = CopyRecipe(folder, "again");
        EditCase(recipe, "table: raw_data.vehicle_status", "table: raw_data.vehicle_statuses");
        (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stdout.ShouldContain("case.yaml:8: table: the lake has no table 'raw_data.vehicle_statuses' (it holds: raw_data.vehicle_events, raw_data.vehicle_status, reports.daily_summary)");
    }

    [Fact]
    public async Task A_malformed_csv_is_named_with_its_file_and_line()
    {
        using var folder = new TempFolder();
        var recipe = CopyRecipe(folder);
        File.WriteAllText(Path.Combine(recipe, "tests", "late-event", "expect", "status-1.csv"), "vehicle_id,report_time,status\nv1,2026-01-10T18:00:00Z,parked\nv2,2026-01-11T08:00:00Z\n");

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stdout.ShouldContain("status-1.csv:3: 2 cell(s), but the header has 3 (vehicle_id,report_time,status)");
    }

    [Fact]
    public async Task A_wrong_api_row_and_an_unexpected_dead_letter_fail_with_their_diffs()
    {
        using var folder = new TempFolder();
        var recipe = CopyRecipe(folder, "ndjson-to-http-api", "examples/ndjson-to-http-api");
        var expect = Path.Combine(recipe, "tests", "bad-lines", "expect");
        File.WriteAllText(Path.Combine(expect, "api.csv"), File.ReadAllText(Path.Combine(expect, "api.csv")).Replace("team,12", "team,13", StringComparison.Ordinal));
        File.WriteAllLines(Path.Combine(expect, "dead_letters.csv"), File.ReadAllLines(Path.Combine(expect, "dead_letters.csv"))[..^1]);

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);

        code.ShouldBe(1, $"{stdout}\n{stderr}");
        stdout.ShouldContain("step 1, http requests to ${SIGNUPS_API_URL}");
        stdout.ShouldContain("api.csv:3 (email=di@w.com): seats expected 13, actual 12");
        stdout.ShouldContain("step 1, dead letters");
        stdout.ShouldContain("unexpected: source=files:ndjson-to-http-api/signups, position=signups_0301.ndjson: line 4, record 4, reason=malformed JSON");
        stderr.ShouldNotContain("   at ");
    }

    private static string CopyRecipe(TempFolder folder, string name = "vehicle-files", string recipe = "vehicle-files")
    {
        var target = folder.Sub(name);
        var source = TestPaths.Recipe(recipe);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }

        return target;
    }

    private static void EditCase(string recipe, string from, string to)
    {
        var path = Path.Combine(recipe, "tests", "late-event", "case.yaml");
        var text = File.ReadAllText(path);
        text.ShouldContain(from);
        File.WriteAllText(path, text.Replace(from, to, StringComparison.Ordinal));
    }
}
