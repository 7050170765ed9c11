using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary><c>sluice validate</c> fails on a model whose SQL does not compile, before anything runs (issue 19).</summary>
public sealed class ValidateModelsTests
{
    [Fact]
    public async Task Validate_names_the_model_file_and_line_of_a_misspelled_column()
    {
        using var folder = new TempFolder("validate-models");
        var recipe = folder.Sub("sales-warehouse");
        SalesWarehouse.WarehouseHarness.CopyDirectory(TestPaths.Recipe("sales-warehouse"), recipe);

        var model = Path.Combine(recipe, "models", "mart", "customer_ytd_spending.sql");
        File.WriteAllText(model, File.ReadAllText(model).Replace("SUM(f.sales_amount)", "SUM(f.sales_amont)", StringComparison.Ordinal));
        var line = File.ReadAllLines(model).ToList().FindIndex(l => l.Contains("sales_amont", StringComparison.Ordinal)) + 1;

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "validate", recipe);

        code.ShouldBe(1, stderr);
        stdout.Replace(folder.Path + "/", "", StringComparison.Ordinal)
            .ShouldContain($"sales-warehouse/models/mart/customer_ytd_spending.sql:{line}: (sql): does not compile on duckdb:");
        stdout.ShouldContain("sales_amont");
    }
}

/// <summary><c>sluice validate</c> of two recipes whose models build the same table (issue 19).</summary>
public sealed class ValidateTableClashTests
{
    [Fact]
    public async Task Validating_two_recipes_together_names_the_table_both_would_build()
    {
        using var folder = new TempFolder("validate-clash");
        var shop = folder.Sub("sales-warehouse");
        SalesWarehouse.WarehouseHarness.CopyDirectory(TestPaths.Recipe("sales-warehouse"), shop);
        var copy = folder.Sub("sales-copy");
        SalesWarehouse.WarehouseHarness.CopyDirectory(TestPaths.Recipe("sales-warehouse"), copy);
        var yaml = Path.Combine(copy, "recipe.yaml");
        File.WriteAllText(yaml, File.ReadAllText(yaml).Replace("name: sales-warehouse", "name: sales-copy", StringComparison.Ordinal));

        var alone = await SluiceProcess.RunAsync(folder.Path, "validate", copy);
        alone.Code.ShouldBe(0, alone.Out + alone.Err);

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "validate", shop, copy);

        code.ShouldBe(1, stderr);
        stdout.ShouldContain("sales-copy/daily: model table(s) ");
        stdout.ShouldContain("mart.customer_ytd_spending (built by sales-warehouse/daily)");
        stderr.ShouldContain("sales-warehouse: valid");
    }
}
