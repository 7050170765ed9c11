using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>The recipe end to end on each engine: what the scenarios must produce, row by row.</summary>
public sealed class SalesWarehouseTests
{
    private static async Task<string[]> Lines(WarehouseHarness h, string sql) => (await h.RowsAsync(sql)).Select(r => string.Join("|", r)).ToArray();

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Three_days_load_clean_and_model_exactly(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { h.Drop(name, content); }

        var landed = await h.RunOnceAsync();

        landed.ShouldBe(6);
        Directory.GetFiles(h.Processed).Length.ShouldBe(6);
        (await Lines(h, "SELECT customer_key, customer_id, name, city, valid_from, valid_to, is_current FROM dw.dim_customer ORDER BY customer_key"))
            .ShouldBe(ThreeDays.DimCustomer);
        (await Lines(h, "SELECT source_file, source_row, customer_key, customer_id, sales_amount, transaction_date FROM dw.fact_sales ORDER BY source_file, source_row"))
            .ShouldBe(ThreeDays.Facts);
        (await Lines(h, "SELECT model, source_file, source_row, rule, column_name FROM dw.quarantine ORDER BY model, source_file, source_row"))
            .ShouldBe(ThreeDays.Quarantine);
        (await Lines(h, "SELECT as_of_date, customer_id, year, ytd_spending FROM mart.customer_ytd_spending ORDER BY as_of_date, customer_id, year"))
            .ShouldBe(ThreeDays.Ytd);
        (await Lines(h, "SELECT reference_date, customer_id, days_since_last_purchase FROM mart.customer_days_since_last_purchase ORDER BY reference_date, customer_id"))
            .ShouldBe(ThreeDays.DaysSince);
        (await Lines(h, "SELECT customer_id, city FROM mart.current_customer ORDER BY customer_id"))
            .ShouldBe(["1|Toulouse", "2|Paris", "3|Grenoble", "4|Lille", "5|Nice"]);
        (await Lines(h, "SELECT product_key, product_name, first_seen FROM dw.dim_product ORDER BY product_key"))
            .ShouldBe(["1|Gadget|2023-12-30", "2|Widget|2023-12-30"]);
        (await Lines(h, "SELECT shop_key, shop_id, first_seen FROM dw.dim_shop ORDER BY shop_key"))
            .ShouldBe(["1|1|2023-12-30", "2|2|2023-12-30", "3|3|2023-12-31"]);

        // Raw keeps what was received, with its lineage.
        (await Lines(h, "SELECT \"Name\", \"City\", _file, _row FROM raw.customer WHERE _row = 2 AND _file = 'customers_20231230.csv'"))
            .ShouldBe(["  Bob   Durand |PARIS|customers_20231230.csv|2"]);
        (await Lines(h, "SELECT raw_values FROM dw.quarantine WHERE rule = 'non_numeric_amount'"))
            .ShouldBe(["{\"CustomerID\":\"1\",\"Product\":\"Widget\",\"SalesAmount\":\"abc\",\"ShopId\":\"1\",\"TransactionDate\":\"2023-12-30\"}"]);

        // Every model run is recorded; the unchanged reload of Bob and Dan opened nothing.
        var runs = new Sluice.Jobs.JobRunStore(h.Engine.Services.Metadata, TimeProvider.System).History("sales-warehouse/daily", 200);
        runs.Count(r => r.Job == "sales-warehouse/daily/dw.dim_customer" && r.Status == "succeeded").ShouldBe(3);
        runs.Single(r => r.Job == "sales-warehouse/daily/dw.dim_customer" && r.AsOf.Date == new DateTime(2023, 12, 31)).Message.ShouldBe("2 versions opened, 2 closed");
        runs.Single(r => r.Job == "sales-warehouse/daily").Status.ShouldBe("succeeded");

        var outcomes = await h.Factory().Processor(h.Engine.Services).TestAsync(h.Factory().Options.Project.Models, CancellationToken.None);
        outcomes.Where(o => !o.Passed).Select(o => $"{o.Model.Name} {o.Test.Describe()} {o.Error}").ShouldBeEmpty();
        outcomes.Count.ShouldBe(22);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Three_waiting_days_give_the_same_tables_as_three_daily_runs(string engine)
    {
        await using var together = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { together.Drop(name, content); }
        await together.RunOnceAsync();

        await using var daily = await WarehouseHarness.CreateAsync(engine);
        foreach (var day in new[] { ThreeDays.Day1, ThreeDays.Day2, ThreeDays.Day3 })
        {
            foreach (var (name, content) in ThreeDays.OfDay(day)) { daily.Drop(name, content); }
            await daily.RunOnceAsync();
        }

        (await daily.DumpAllAsync()).ShouldBe(await together.DumpAllAsync());
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task An_older_file_lands_in_its_place_in_the_history(string engine)
    {
        await using var inOrder = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { inOrder.Drop(name, content); }
        await inOrder.RunOnceAsync();

        await using var late = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files.Where(f => !f.Name.Contains("20231231", StringComparison.Ordinal))) { late.Drop(name, content); }
        await late.RunOnceAsync();
        (await late.CountAsync("SELECT count(*) FROM dw.dim_customer WHERE customer_id = 1")).ShouldBe(2);

        foreach (var (name, content) in ThreeDays.OfDay(ThreeDays.Day2)) { late.Drop(name, content); }
        await late.RunOnceAsync();

        (await late.DumpAllAsync()).ShouldBe(await inOrder.DumpAllAsync());
        var job = new Sluice.Jobs.JobRunStore(late.Engine.Services.Metadata, TimeProvider.System).History("sales-warehouse/daily", 500).First(r => r.Job == "sales-warehouse/daily");
        job.Message!.ShouldContain("2023-12-31..2024-01-01");
        job.Message!.ShouldContain("1 already processed day(s) recomputed");
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_file_for_a_date_already_loaded_replaces_it_and_the_same_file_again_changes_nothing(string engine)
    {
        var corrected = ("sales_20231231.csv", "CustomerID,Product,SalesAmount,ShopId,TransactionDate\n1,Widget,25,1,2023-12-31\n4,Widget,1,3,2023-12-31\n");
        await using var expected = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files.Select(f => f.Name == corrected.Item1 ? corrected : f)) { expected.Drop(name, content); }
        await expected.RunOnceAsync();

        await using var h = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { h.Drop(name, content); }
        await h.RunOnceAsync();
        var before = await h.DumpAllAsync();

        h.Drop(ThreeDays.Files[0].Name, ThreeDays.Files[0].Content);
        await h.RunOnceAsync();
        (await h.DumpAllAsync()).ShouldBe(before);

        h.Drop(corrected.Item1, corrected.Item2);
        await h.RunOnceAsync();
        var after = await h.DumpAllAsync();
        after.ShouldBe(await expected.DumpAllAsync());
        after["dw.fact_sales"].ShouldContain("|25.00|");
        (await h.CountAsync("SELECT count(*) FROM raw.customer_sales WHERE _file = 'sales_20231231.csv'")).ShouldBe(5);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Reprocessing_days_with_a_backfill_gives_the_same_tables(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.Files) { h.Drop(name, content); }
        await h.RunOnceAsync();
        var before = await h.DumpAllAsync();

        var outcome = await h.RunJobAsync(ThreeDays.Day3, ThreeDays.Day1, ThreeDays.Day2, "backfill");
        outcome.Message.ShouldContain("3 day(s) 2023-12-30..2024-01-01");
        (await h.DumpAllAsync()).ShouldBe(before);

        outcome = await h.RunJobAsync(ThreeDays.Day2);
        (await h.DumpAllAsync()).ShouldBe(before);

        // A scheduled run for a day without files adds the marts as of that day and changes nothing else.
        await h.RunJobAsync(ThreeDays.Day3.AddDays(1), trigger: "schedule");
        var later = await h.DumpAllAsync();
        later["dw.dim_customer"].ShouldBe(before["dw.dim_customer"]);
        later["dw.fact_sales"].ShouldBe(before["dw.fact_sales"]);
        (await Lines(h, "SELECT customer_id, days_since_last_purchase FROM mart.customer_days_since_last_purchase WHERE reference_date = DATE '2024-01-02' ORDER BY customer_id"))
            .ShouldBe(["1|1", "2|2", "3|4", "4|2", "5|NULL"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Under_policy_close_a_customer_missing_from_a_full_snapshot_is_closed(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        h.EditRecipe("models/dw/dim_customer.sql", sql => sql.Replace("absent: keep", "absent: close", StringComparison.Ordinal));
        h.Drop("customers_20240301.csv", "ID,Name,City\n1,Ann,Lyon\n2,Ben,Nice\n");
        h.Drop("customers_20240302.csv", "ID,Name,City\n1,Ann,Lyon\n");
        h.Drop("customers_20240303.csv", "ID,Name,City\n1,Ann,Lyon\n2,Ben,Nice\n");
        await h.RunOnceAsync();

        (await Lines(h, "SELECT customer_key, customer_id, valid_from, valid_to, is_current FROM dw.dim_customer ORDER BY customer_key"))
            .ShouldBe(["1|1|2024-03-01|NULL|true", "2|2|2024-03-01|2024-03-02|false", "3|2|2024-03-03|NULL|true"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_failing_model_leaves_its_previous_state_and_the_next_run_repairs_the_day(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        foreach (var (name, content) in ThreeDays.OfDay(ThreeDays.Day1)) { h.Drop(name, content); }
        await h.RunOnceAsync();
        var ytdBefore = await h.DumpAsync("mart.customer_ytd_spending");

        var good = File.ReadAllText(Path.Combine(h.RecipeFolder, "models/mart/customer_ytd_spending.sql"));
        h.EditRecipe("models/mart/customer_ytd_spending.sql", sql => sql.Replace("SUM(f.sales_amount)", "SUM(f.no_such_column)", StringComparison.Ordinal));
        foreach (var (name, content) in ThreeDays.OfDay(ThreeDays.Day2)) { h.Drop(name, content); }
        var error = await Should.ThrowAsync<Core.SluiceException>(h.RunOnceAsync);
        error.Message.ShouldContain("mart.customer_ytd_spending");
        error.Message.ShouldContain("no_such_column");

        (await h.DumpAsync("mart.customer_ytd_spending")).ShouldBe(ytdBefore);
        // The day's processing is published at once or not at all: the facts that ran before the failure are not shown either.
        (await h.CountAsync("SELECT count(*) FROM dw.fact_sales WHERE file_date = DATE '2023-12-31'")).ShouldBe(0);
        var runs = new Sluice.Jobs.JobRunStore(h.Engine.Services.Metadata, TimeProvider.System).History("sales-warehouse/daily", 100);
        var failed = runs.First(r => r.Job == "sales-warehouse/daily/mart.customer_ytd_spending");
        failed.Status.ShouldBe("failed");
        failed.Message!.ShouldContain("no_such_column");
        runs.First(r => r.Job == "sales-warehouse/daily").Status.ShouldBe("failed");

        h.EditRecipe("models/mart/customer_ytd_spending.sql", _ => good);
        await h.RunOnceAsync();
        (await h.CountAsync("SELECT count(*) FROM dw.fact_sales WHERE file_date = DATE '2023-12-31'")).ShouldBe(3);
        (await Lines(h, "SELECT as_of_date, customer_id, year, ytd_spending FROM mart.customer_ytd_spending ORDER BY as_of_date, customer_id, year"))
            .ShouldBe(ThreeDays.Ytd.Where(l => !l.StartsWith("2024", StringComparison.Ordinal)).ToArray());
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_failing_test_names_the_model_the_column_and_offending_rows(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        h.EditRecipe("models/dw/dim_customer.sql", sql => sql.Replace(
            "  - accepted_values: {column: is_current, values: [true, false]}",
            "  - accepted_values: {column: is_current, values: [true, false]}\n  - accepted_values: {column: city, values: [Paris, Lyon]}\n  - row_count: {max: 3}",
            StringComparison.Ordinal));
        foreach (var (name, content) in ThreeDays.OfDay(ThreeDays.Day1)) { h.Drop(name, content); }
        await h.RunOnceAsync();

        var factory = h.Factory();
        var outcomes = await factory.Processor(h.Engine.Services).TestAsync(factory.Options.Project.Select(["dw.dim_customer"]), CancellationToken.None);

        var city = outcomes.Single(o => o.Test.Columns.SequenceEqual(["city"]));
        city.Passed.ShouldBeFalse();
        city.Failures.ShouldBe(3);
        city.Examples.Rows.Select(r => string.Join("|", r.Select(WarehouseHarness.Format))).ShouldBe(["Lille|1", "Nice|1", "Saint-Étienne|1"]);
        var count = outcomes.Single(o => o.Test.Kind == Models.ModelTestKind.RowCount);
        count.Passed.ShouldBeFalse();
        WarehouseHarness.Format(count.Examples.Rows[0][0]).ShouldBe("5");
        outcomes.Count(o => o.Passed).ShouldBe(5);
        var report = Sluice.Cli.ModelTestReport.Format(outcomes);
        report.ShouldContain("FAIL  dw.dim_customer: accepted_values(city: Paris, Lyon): 3 offending values in column city");
        report.ShouldContain("dim_customer.sql:");
        report.ShouldContain("Saint-Étienne");
        report.ShouldContain("5 passed, 2 failed");
    }
}
