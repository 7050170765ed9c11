using Shouldly;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>
/// The sales warehouse recomputes only the model-days whose inputs changed (issue 19): a corrected sales export
/// touches neither the customer models nor the unchanged days, and the tables equal an in-order run's.
/// </summary>
public sealed class StaleDaysTests
{
    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_corrected_sales_day_recomputes_its_facts_and_the_marts_from_that_day_only(string engine)
    {
        var corrected = ("sales_20231231.csv", "CustomerID,Product,SalesAmount,ShopId,TransactionDate\n1,Widget,20,1,2023-12-31\n1,Gadget,7.25,2,2023-12-30\n4,Widget,2,3,2023-12-31\n");
        await using var expected = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files.Select(f => f.Name == corrected.Item1 ? corrected : f)) { expected.Drop(name, content); }
        await expected.RunOnceAsync();

        await using var h = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { h.Drop(name, content); }
        await h.RunOnceAsync();
        var store = new JobRunStore(h.Engine.Services.Metadata, TimeProvider.System);
        var last = store.History("sales-warehouse/daily", 1000).Max(r => r.Id);

        h.Drop(corrected.Item1, corrected.Item2);
        await h.RunOnceAsync();

        var runs = store.History("sales-warehouse/daily", 1000)
            .Where(r => r.Id > last && r.Job != "sales-warehouse/daily")
            .Select(r => $"{r.Job["sales-warehouse/daily/".Length..]}@{r.AsOf:yyyy-MM-dd}").Order(StringComparer.Ordinal).ToArray();
        runs.ShouldBe([
            // The customer dimension, which the day's sales look up, is set back to 2023-12-31 for the sales and replayed.
            "dw.dim_customer@2024-01-01",
            // Product and shop keys build on earlier days: from the changed day on.
            "dw.dim_product@2023-12-31", "dw.dim_product@2024-01-01", "dw.dim_shop@2023-12-31", "dw.dim_shop@2024-01-01",
            // The facts read only their day (reads: day); the dimensions came out the same, so 2024-01-01 is untouched.
            "dw.fact_sales@2023-12-31",
            // The marts read every fact up to their day: the changed day and after, never 2023-12-30.
            "mart.customer_days_since_last_purchase@2023-12-31", "mart.customer_days_since_last_purchase@2024-01-01",
            "mart.customer_ytd_spending@2023-12-31", "mart.customer_ytd_spending@2024-01-01",
            "staging.stg_sales@2023-12-31",
        ]);
        (await h.DumpAllAsync()).ShouldBe(await expected.DumpAllAsync());

        // Nothing new: nothing runs.
        (await h.RunJobAsync(ThreeDays.Day3)).Message.ShouldStartWith("nothing to do");
    }
}
