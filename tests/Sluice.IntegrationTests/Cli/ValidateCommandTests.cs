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

    [Theory]
    [InlineData("vehicle-files", null)]
    [InlineData("tenant-analytics", null)]
    [InlineData("repeat-reminder", null)]
    [InlineData("sales-warehouse", null)]
    [InlineData("engagement-cdc", "pipeline 'cdc': not every column checked: source 'postgres_cdc' learns its tables' columns from its server, so only `sluice validate --connect` checks the columns steps and sinks name")]
    [InlineData("examples/cdc-to-redis-counters", "pipeline 'page_views': not every column checked: source 'postgres_cdc' learns its tables' columns from its server")]
    [InlineData("examples/csv-to-postgres-and-lake", null)]
    [InlineData("examples/http-lookup-cdc-to-postgres", "pipeline 'products': not every column checked: source 'postgres_cdc'")]
    [InlineData("examples/ndjson-to-http-api", null)]
    [InlineData("examples/postgres-pull-to-clickhouse", null)]
    [InlineData("examples/salesforce-to-lake", null)]
    public async Task Every_shipped_recipe_validates_clean_and_says_what_it_could_not_check_offline(string recipe, string? note)
    {
        using var data = new TempFolder();

        var (code, stdout, err) = await SluiceProcess.RunAsync(data.Path, "validate", recipe);

        code.ShouldBe(0, stdout + err);
        stdout.ShouldBeEmpty();
        if (note is null) { err.ShouldNotContain("not every column checked"); }
        else { err.ShouldContain(note); }
    }

    [Fact]
    public async Task A_step_or_sink_naming_a_column_that_is_not_there_is_reported_with_file_line_and_component()
    {
        using var folder = new TempFolder();
        var recipe = Directory.CreateDirectory(folder.Sub("columns")).FullName;
        Directory.CreateDirectory(Path.Combine(recipe, "filetypes"));
        File.WriteAllText(Path.Combine(recipe, "filetypes", "orders.yaml"), """
            name: orders
            pattern: "orders_*.csv"
            format: csv
            table: raw.orders
            event_time: at
            fields:
              order_id: string
              at: timestamp
              customer: string
              amount: double
            """);
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), """
            name: columns
            pipelines:
              orders:
                source:
                  type: files
                  folder: drop
                steps:
                  - type: map
                    rename: { customer: user }
                  - type: filter
                    where: "customer <> 'test'"
                sinks:
                  - type: redis
                    table: orders
                    key: "spend:{user_id}"
                    value: amount
                  - type: postgres
                    schema: shop
                    keys: { orders: [id] }
            """);

        var (code, stdout, _) = await SluiceProcess.RunAsync(folder.Path, "validate", recipe);

        code.ShouldBe(1, stdout);
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Replace(folder.Path + "/", "", StringComparison.Ordinal)).ShouldBe([
            "columns/recipe.yaml:11: pipelines.orders.steps[1].where: filter: column 'customer' of table 'orders' is not there any more: it was renamed to 'user' by steps[0] (map)",
            "columns/recipe.yaml:15: pipelines.orders.sinks[0].key: redis sink: table 'orders' has no column 'user_id' at this point (its columns: order_id, at, user, amount)",
            "columns/recipe.yaml:12: pipelines.orders.sinks: postgres sink postgres:shop: keys.orders names 'id', which is not a column of the table (its columns: order_id, at, user, amount)",
        ]);
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
