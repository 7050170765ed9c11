using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

public sealed class ValidateCommandTests
{
    [Fact]
    public async Task Shipped_recipe_is_valid()
    {
        using var data = new TempFolder();

        var (code, _, err) = await SluiceProcess.RunAsync(data.Path, "validate", "vehicle-files");

        code.ShouldBe(0, err);
        err.ShouldContain("vehicle-files: valid");
    }

    [Fact]
    public async Task Every_problem_is_one_line_with_file_line_and_key_and_exit_code_1()
    {
        using var folder = new TempFolder();
        var recipe = folder.Sub("broken");
        Directory.CreateDirectory(recipe);
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), """
            name: broken
            pipelines:
              ingest:
                source:
                  type: filez
                after_load: [nope]
            jobs:
              summary:
                type: daily_summary
                schedule: "61 * * * *"
                source: raw_data.x
                group_by: [a]
                time: t
                latest: { b: c }
                target: reports.y
                lookback_days: many
                schedul: "0 1 * * *"
              other:
                schedule: "0 1 * * *"
            """);

        var (code, stdout, _) = await SluiceProcess.RunAsync(folder.Path, "validate", recipe);

        code.ShouldBe(1);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Replace(folder.Path + "/", "", StringComparison.Ordinal)).ToList();
        lines.ShouldContain("broken/recipe.yaml:10: jobs.summary.schedule: not a valid cron expression '61 * * * *': the minute field '61' is not valid (field 1: 0-59, '*', lists a,b, ranges a-b, steps */n)");
        lines.ShouldContain("broken/recipe.yaml:16: jobs.summary.lookback_days: expected a whole number, got 'many'");
        lines.ShouldContain(l => l.StartsWith("broken/recipe.yaml:17: jobs.summary.schedul: unknown key; did you mean 'schedule'? (known keys: ", StringComparison.Ordinal));
        lines.ShouldContain("broken/recipe.yaml:19: jobs.other.type: missing required field");
        lines.ShouldContain("broken/recipe.yaml:6: pipelines.ingest.after_load: no job named 'nope' in this recipe");
        lines.ShouldContain(l => l.StartsWith("broken/recipe.yaml:5: pipelines.ingest.source.type: unknown connector 'filez' (known: files", StringComparison.Ordinal));
        lines.Count.ShouldBe(6, stdout);
    }

    [Fact]
    public async Task A_bad_file_type_file_is_reported_by_validate()
    {
        using var folder = new TempFolder();
        var recipe = folder.Sub("ft");
        Directory.CreateDirectory(Path.Combine(recipe, "filetypes"));
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), "pipelines:\n  ingest:\n    source:\n      type: files\n");
        File.WriteAllText(Path.Combine(recipe, "filetypes", "x.yaml"), "name: x\npattern: \"x_*.csv\"\nformat: csv\ntable: raw.x\nevent_time: at\nfields:\n  at: timestamp\n  n: number\n  z: nonsense\n");

        var (code, stdout, _) = await SluiceProcess.RunAsync(folder.Path, "validate", recipe);

        code.ShouldBe(1);
        stdout.ShouldContain("filetypes/x.yaml:9: fields.z: unknown field type 'nonsense'");
    }

    [Fact]
    public async Task Unknown_recipe_names_the_known_ones()
    {
        using var data = new TempFolder();

        var (code, _, err) = await SluiceProcess.RunAsync(data.Path, "validate", "no-such-recipe");

        code.ShouldBe(1);
        err.ShouldContain("recipe 'no-such-recipe' not found");
        err.ShouldContain("vehicle-files");
    }
}
