using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary><c>sluice models show</c>: a model's compiled SQL for its engine, then its first rows (issue 19).</summary>
public sealed class ModelsShowTests
{
    [Fact]
    public async Task Show_prints_the_compiled_sql_and_the_first_rows_or_says_why_there_are_none()
    {
        await using var h = await WarehouseHarness.CreateAsync("duckdb");
        string[] show = ["models", "show", h.RecipeFolder, "mart.customer_ytd_spending", "--date", "2024-05-02", "--rows", "3"];

        // Before anything ran there: the SQL, and why no rows.
        var empty = await SluiceProcess.RunAsync(h.DataRoot, show);
        empty.Code.ShouldBe(0, empty.Err);
        empty.Out.ShouldContain("-- compiled for duckdb as of 2024-05-02");
        empty.Out.ShouldContain($"-- no rows to show: the data folder {h.DataRoot} holds nothing of recipe 'sales-warehouse'");

        (await SluiceProcess.RunAsync(h.DataRoot, "generate", "sales-warehouse", "--days", "2", "--customers", "50", "--sales-per-day", "100", "--start", "2024-05-01", "--seed", "3")).Code.ShouldBe(0);
        var run = await SluiceProcess.RunAsync(h.DataRoot, "run", h.RecipeFolder, "--once");
        run.Code.ShouldBe(0, run.Err);

        var shown = await SluiceProcess.RunAsync(h.DataRoot, show);
        shown.Code.ShouldBe(0, shown.Err);
        var lines = shown.Out.Split('\n');
        lines[0].ShouldStartWith("mart.customer_ytd_spending: incremental (");
        lines[0].ShouldEndWith("customer_ytd_spending.sql)");
        lines[1].ShouldBe("reads: dw.fact_sales");
        // The as-of date is compiled in; no template is left.
        shown.Out.ShouldContain("WHERE f.transaction_date <= DATE '2024-05-02'");
        shown.Out.ShouldNotContain("{{");
        shown.Out.ShouldContain("-- first 3 rows");
        var header = lines.SkipWhile(l => l != "-- first 3 rows").Skip(1).First();
        header.ShouldContain("customer_id");
        header.ShouldContain("ytd_spending");
        header.ShouldContain("as_of_date");
        (await h.CountAsync("SELECT count(*) FROM mart.customer_ytd_spending")).ShouldBeGreaterThan(3);
        lines.SkipWhile(l => l != "-- first 3 rows").Count(l => l.Contains("2024-05-0", StringComparison.Ordinal)).ShouldBe(3);
    }
}
