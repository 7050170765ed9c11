using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>The recipe's commands as a user types them (embedded warehouse): generate, run, models run/test, backfill, job history.</summary>
public sealed class CliTests
{
    [Fact]
    public async Task The_recipe_runs_from_the_command_line()
    {
        await using var h = await WarehouseHarness.CreateAsync("duckdb");
        string[] recipe = [h.RecipeFolder];

        var generate = await SluiceProcess.RunAsync(h.DataRoot, "generate", "sales-warehouse", "--days", "3", "--customers", "200", "--sales-per-day", "500", "--start", "2024-05-01", "--seed", "3");
        generate.Code.ShouldBe(0, generate.Err);
        generate.Out.ShouldContain("wrote 6 files");

        var run = await SluiceProcess.RunAsync(h.DataRoot, ["run", .. recipe, "--once"]);
        run.Code.ShouldBe(0, run.Err);
        (await h.CountAsync("SELECT count(DISTINCT as_of_date) FROM mart.customer_ytd_spending")).ShouldBe(3);

        var refused = await SluiceProcess.RunAsync(h.DataRoot, ["models", "run", .. recipe, "--select", "dw.dim_customer", "--date", "2024-05-02"]);
        refused.Code.ShouldBe(1);
        refused.Err.ShouldContain("dw.dim_customer already ran as of 2024-05-03, after 2024-05-02");
        refused.Err.ShouldContain("sluice backfill sales-warehouse/daily --from 2024-05-02");

        var later = await SluiceProcess.RunAsync(h.DataRoot, ["models", "run", .. recipe, "--date", "2024-05-04"]);
        later.Code.ShouldBe(0, later.Err);
        // 2024-05-04 never ran (no files): every model runs as of it, and no other day.
        later.Out.ShouldContain("sales-warehouse/daily as of 2024-05-04: ran 9 model-day(s) as of 1 day(s) 2024-05-04..2024-05-04 on duckdb");
        (await h.CountAsync("SELECT count(*) FROM mart.customer_days_since_last_purchase WHERE reference_date = DATE '2024-05-04'"))
            .ShouldBe(await h.CountAsync("SELECT count(DISTINCT customer_id) FROM dw.dim_customer"));

        var before = await h.DumpAllAsync();
        var backfill = await SluiceProcess.RunAsync(h.DataRoot, ["backfill", $"{h.RecipeFolder}/daily", "--from", "2024-05-02", "--to", "2024-05-03"]);
        backfill.Code.ShouldBe(0, backfill.Err);
        // The range's days are forced; after it, only what builds on earlier days (dimensions, the view) replays 2024-05-04.
        backfill.Out.ShouldContain("ran 22 model-day(s) as of 3 day(s) 2024-05-02..2024-05-04");
        (await h.DumpAllAsync()).ShouldBe(before);

        var test = await SluiceProcess.RunAsync(h.DataRoot, ["models", "test", .. recipe]);
        test.Code.ShouldBe(0, test.Out + test.Err);
        test.Out.ShouldContain("22 passed, 0 failed");

        var history = await SluiceProcess.RunAsync(h.DataRoot, "job", "history", "--job", "sales-warehouse/daily", "--limit", "100");
        history.Out.ShouldContain("sales-warehouse/daily/dw.dim_customer");
        history.Out.ShouldContain("backfill:duckdb");
        history.Out.ShouldContain("versions opened");
    }
}
