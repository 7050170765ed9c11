using System.Text.Json;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>What the CLI prints for a person: values as values, no .NET type names, listings as JSON, tables that fit.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CliOutputTests
{
    [Fact]
    public async Task List_struct_and_map_values_print_as_values_in_a_table_and_as_json_in_json()
    {
        using var data = new TempFolder();
        const string sql = "SELECT [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, MAP {'k': 2} AS m, [[1], []] AS nested";

        var table = await SluiceProcess.RunAsync(data.Path, "query", sql);
        table.Code.ShouldBe(0, table.Err);
        table.Out.ShouldNotContain("System.");
        table.Out.ShouldContain("[1, 2]");
        table.Out.ShouldContain("{'a': 1, 'b': 'x'}");
        table.Out.ShouldContain("{'k': 2}");
        table.Out.ShouldContain("[[1], []]");

        var json = await SluiceProcess.RunAsync(data.Path, "query", sql, "--format", "json");
        json.Code.ShouldBe(0, json.Err);
        var row = JsonDocument.Parse(json.Out).RootElement[0];
        row.GetProperty("l").EnumerateArray().Select(e => e.GetInt32()).ShouldBe([1, 2]);
        row.GetProperty("s").GetProperty("b").GetString().ShouldBe("x");
        row.GetProperty("m").GetProperty("k").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task A_value_of_the_wrong_type_is_named_in_the_users_words_not_as_a_dotnet_type()
    {
        using var data = new TempFolder();

        var format = await SluiceProcess.RunAsync(data.Path, "query", "SELECT 1", "--format", "yaml");
        format.Code.ShouldBe(1);
        format.Err.ShouldContain("--format: 'yaml' is not one of table, csv, json");
        format.Err.ShouldNotContain("Sluice.Lake");

        var id = await SluiceProcess.RunAsync(data.Path, "dlq", "show", "abc");
        id.Code.ShouldBe(1);
        id.Err.ShouldContain("<id>: 'abc' is not a whole number");
        id.Err.ShouldNotContain("System.");

        var limit = await SluiceProcess.RunAsync(data.Path, "job", "history", "--limit", "ten");
        limit.Err.ShouldContain("--limit: 'ten' is not a whole number");
    }

    [Fact]
    public async Task Listings_print_json_with_instants_in_iso_8601_utc()
    {
        using var data = new TempFolder();
        // A job that reads the lake runs on a folder that holds its recipe (an empty run is enough).
        (await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once")).Code.ShouldBe(0);
        (await SluiceProcess.RunAsync(data.Path, "job", "run", "vehicle-files/daily-summary", "--date", "2025-11-03")).Code.ShouldBe(0);

        var history = await SluiceProcess.RunAsync(data.Path, "job", "history", "--format", "json");
        history.Code.ShouldBe(0, history.Err);
        var run = JsonDocument.Parse(history.Out).RootElement[0];
        run.GetProperty("job").GetString().ShouldBe("vehicle-files/daily-summary");
        run.GetProperty("as_of").GetString().ShouldBe("2025-11-03T00:00:00Z");
        run.GetProperty("started_utc").GetString()!.ShouldEndWith("Z");
        DateTimeOffset.Parse(run.GetProperty("started_utc").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(DateTimeOffset.UtcNow.AddHours(-1));

        var models = await SluiceProcess.RunAsync(data.Path, "models", "list", "sales-warehouse", "--format", "json");
        models.Code.ShouldBe(0, models.Err);
        JsonDocument.Parse(models.Out).RootElement.EnumerateArray().Select(m => m.GetProperty("model").GetString()).ShouldContain("dw.dim_customer");

        var filetypes = await SluiceProcess.RunAsync(data.Path, "filetypes", "list", "vehicle-files", "--format", "json");
        filetypes.Code.ShouldBe(0, filetypes.Err);
        JsonDocument.Parse(filetypes.Out).RootElement.EnumerateArray().Select(t => t.GetProperty("name").GetString()).ShouldContain("vehicle_events");

        var empty = await SluiceProcess.RunAsync(data.Path, "job", "history", "--job", "vehicle-files/no-such-job", "--format", "json");
        JsonDocument.Parse(empty.Out).RootElement.GetArrayLength().ShouldBe(0, "a program reading the JSON gets an empty list, not a sentence");
    }

    [Fact]
    public async Task A_table_is_cut_to_the_terminal_width_and_wide_prints_it_whole()
    {
        using var data = new TempFolder();
        var sql = $"SELECT 1 AS id, '{new string('x', 150)}' AS long_text, 'short' AS tail";
        var env = new Dictionary<string, string> { ["COLUMNS"] = "60" };

        using (var cut = SluiceProcess.Start(data.Path, env, "query", sql))
        {
            (await cut.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, cut.Stderr);
            var lines = cut.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            lines.Take(3).ShouldAllBe(l => l.Length <= 60);
            cut.Stdout.ShouldContain("xxx…");
            cut.Stdout.ShouldContain("short");
            cut.Stdout.ShouldContain("--wide prints them whole");
        }

        using var wide = SluiceProcess.Start(data.Path, env, "query", sql, "--wide");
        (await wide.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, wide.Stderr);
        wide.Stdout.ShouldContain(new string('x', 150));
        wide.Stdout.ShouldNotContain("…");
    }

    [Fact]
    public async Task Replay_all_with_nothing_pending_says_so_and_succeeds()
    {
        using var data = new TempFolder();
        var replay = await SluiceProcess.RunAsync(data.Path, "dlq", "replay", "--all", "--source", "http:engagement-cdc");
        replay.Code.ShouldBe(0, replay.Err);
        replay.Out.ShouldContain("no pending dead letters from http:engagement-cdc: nothing to replay");

        var none = await SluiceProcess.RunAsync(data.Path, "dlq", "replay");
        none.Code.ShouldBe(1);
        none.Err.ShouldContain("name letter ids, or use --all");
    }

    [Fact]
    public async Task Generated_tenant_tokens_are_kept_in_the_data_folder_readable_by_the_owner_only()
    {
        using var folder = new TempFolder();
        var work = Directory.CreateDirectory(folder.Sub("work")).FullName;
        var dataDir = folder.Sub("data");
        // No server there: the tokens are made before the first request, which then fails.
        using var refusing = FreePort.Refusing();
        using var generate = SluiceProcess.StartIn(work, dataDir, null, "generate", "tenant-analytics", "--tenants", "2", "--duration", "1", "--url", $"http://127.0.0.1:{refusing.Port}");
        await generate.WaitAsync(TimeSpan.FromMinutes(2));

        Directory.EnumerateFileSystemEntries(work).ShouldBeEmpty("nothing is written into the working directory");
        var file = Path.Combine(dataDir, "tenant-analytics", "generator-tokens.txt");
        File.Exists(file).ShouldBeTrue(generate.Stderr);
        File.GetUnixFileMode(file).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.ReadAllLines(file).Select(l => l.Split(' ')[0]).ShouldBe(["tenant-1", "tenant-2"]);
    }

    [Fact]
    public async Task A_query_on_a_data_folder_that_does_not_exist_says_so_and_creates_none()
    {
        using var folder = new TempFolder();
        var missing = folder.Sub("no-such-data");
        using var query = SluiceProcess.StartIn(folder.Path, missing, null, "query", "SELECT 1");
        (await query.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(1);
        query.Stderr.ShouldContain($"no data folder at {missing}");
        Directory.Exists(missing).ShouldBeFalse();
    }
}
