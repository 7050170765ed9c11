using System.Globalization;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>A running <c>sluice run</c> and files edited under it (issue 19): model SQL is taken whole or refused whole; a recipe edit waits for a restart, said loudly.</summary>
public sealed class ReloadOnEditTests
{
    private const string Model = "models/mart/customer_ytd_spending.sql";
    private const string Sum = "CAST(SUM(f.sales_amount) AS DECIMAL(18,2)) AS ytd_spending";
    private const string Zero = "CAST(0 AS DECIMAL(18,2)) AS ytd_spending";
    private const string Misspelled = "CAST(SUM(f.sales_amont) AS DECIMAL(18,2)) AS ytd_spending";

    [Fact]
    public async Task Edited_model_sql_is_used_by_the_next_run_and_a_broken_edit_keeps_the_previous_models()
    {
        await using var h = await WarehouseHarness.CreateAsync("duckdb");
        var port = FreePort.Next();
        var url = $"http://127.0.0.1:{port}";
        using var run = SluiceProcess.Start(h.DataRoot, "run", h.RecipeFolder, "--no-schedule", "--port", port.ToString(CultureInfo.InvariantCulture));
        await run.WaitForOutputAsync("Ctrl-C stops", TimeSpan.FromMinutes(2));

        await LandAsync(h, ThreeDays.Day1);
        (await h.CountAsync(Spent(ThreeDays.Day1))).ShouldBeGreaterThan(0);

        // A valid edit: the next run computes with it.
        h.EditRecipe(Model, sql => sql.Replace(Sum, Zero, StringComparison.Ordinal));
        await LandAsync(h, ThreeDays.Day2);
        await run.WaitForOutputAsync("changed on disk and were reloaded", TimeSpan.FromSeconds(90));
        (await h.CountAsync(Spent(ThreeDays.Day2))).ShouldBe(0);

        // A broken edit: refused whole, said with file and line, health degraded; the previous (valid) models keep running.
        h.EditRecipe(Model, sql => sql.Replace(Zero, Misspelled, StringComparison.Ordinal));
        await LandAsync(h, ThreeDays.Day3);
        await run.WaitForOutputAsync("keep them from loading; the previous models keep running", TimeSpan.FromSeconds(90));
        run.Stderr.ShouldContain("customer_ytd_spending.sql:");
        run.Stderr.ShouldContain("sales_amont");
        (await h.CountAsync(Spent(ThreeDays.Day3))).ShouldBe(0);
        (await GetAsync(url + "/healthz")).Body.ShouldContain("the models changed on disk do not load or compile");

        // The recipe itself: not taken while running; a Warning and degraded health until a restart.
        h.EditRecipe("recipe.yaml", yaml => yaml.Replace("poll_interval: 1s", "poll_interval: 2s", StringComparison.Ordinal));
        await run.WaitForOutputAsync("recipe.yaml changed on disk; this process keeps running the recipe it started with", TimeSpan.FromSeconds(90));
        (await GetAsync(url + "/healthz")).Body.ShouldContain("recipe changed on disk");
        (await GetAsync(url + "/healthz")).Body.ShouldContain("restart to apply");

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
    }

    private static string Spent(DateOnly day) =>
        $"SELECT count(*) FROM mart.customer_ytd_spending WHERE as_of_date = DATE '{day:yyyy-MM-dd}' AND ytd_spending <> 0";

    /// <summary>Drops a day's files and waits until they are taken in and the marts have rows as of that day.</summary>
    private static async Task LandAsync(WarehouseHarness h, DateOnly day)
    {
        foreach (var (name, content) in ThreeDays.OfDay(day)) { h.Drop(name, content); }
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        var rows = $"SELECT count(*) FROM mart.customer_ytd_spending WHERE as_of_date = DATE '{day:yyyy-MM-dd}'";
        while (Directory.EnumerateFiles(h.Incoming).Any() || !await HasRowsAsync(h, rows) || await RunningAsync(h))
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"{day:yyyy-MM-dd} not modelled within 2 minutes"); }
            await Task.Delay(200);
        }
    }

    private static async Task<bool> HasRowsAsync(WarehouseHarness h, string sql)
    {
        try
        {
            return await h.CountAsync(sql) > 0;
        }
        catch (Sluice.Core.SluiceException)
        {
            return false; // the table does not exist before the first run
        }
    }

    /// <summary>A models run still going (one after each of the day's two files).</summary>
    private static Task<bool> RunningAsync(WarehouseHarness h) =>
        Task.FromResult(new Sluice.Jobs.JobRunStore(h.Engine.Services.Metadata, h.Engine.Services.Time).History("sales-warehouse/daily", 5).Any(r => r.Status == "running"));
}
