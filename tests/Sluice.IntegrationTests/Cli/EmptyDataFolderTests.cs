using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>A command pointed at a data folder that holds nothing of its recipe says so instead of succeeding on nothing (issue 19).</summary>
public sealed class EmptyDataFolderTests
{
    [Fact]
    public async Task Commands_on_a_folder_without_the_recipe_name_the_folder_and_how_to_fill_it()
    {
        using var data = new TempFolder();
        var root = Path.GetFullPath(data.Path);

        // Nothing at all yet: listings and a query of a table say the folder is empty, exit 1.
        foreach (var args in new[] { new[] { "dlq", "list" }, ["job", "history"], ["query", "SELECT * FROM mart.customer_ytd_spending"] })
        {
            var empty = await SluiceProcess.RunAsync(data.Path, args);
            empty.Code.ShouldBe(1, $"{string.Join(' ', args)}: {empty.Out}");
            empty.Err.ShouldContain($"the data folder {root} holds nothing yet: no recipe has run there. Fill it with 'sluice run <recipe> --once --data {root}'");
        }

        // Another recipe ran there: the sales-warehouse commands name the folder, what it holds and how to fill it.
        (await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once")).Code.ShouldBe(0);
        foreach (var args in new[]
        {
            new[] { "models", "run", "sales-warehouse", "--date", "2024-03-08" }, ["models", "test", "sales-warehouse"],
            ["backfill", "sales-warehouse/daily", "--from", "2024-03-05", "--to", "2024-03-07"], ["job", "run", "sales-warehouse/daily"],
            ["job", "history", "--job", "sales-warehouse/daily"],
        })
        {
            var wrong = await SluiceProcess.RunAsync(data.Path, args);
            wrong.Code.ShouldBe(1, $"{string.Join(' ', args)}: {wrong.Out}");
            wrong.Err.ShouldContain($"the data folder {root} holds nothing of recipe 'sales-warehouse': it has not run there (it holds vehicle-files). " +
                $"Fill it with 'sluice run sales-warehouse --once --data {root}' (sample input first: 'sluice generate sales-warehouse --data {root}')");
        }

        // The folder's own recipe still works, and nothing of the other was written.
        (await SluiceProcess.RunAsync(data.Path, "job", "history", "--job", "vehicle-files")).Code.ShouldBe(0);
        (await SluiceProcess.RunAsync(data.Path, "dlq", "list")).Code.ShouldBe(0);
        Directory.Exists(Path.Combine(data.Path, "lake", "mart")).ShouldBeFalse();
    }
}
