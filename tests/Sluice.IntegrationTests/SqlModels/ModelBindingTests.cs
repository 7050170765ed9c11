using Npgsql;
using Shouldly;
using Sluice.Core.Config;
using Sluice.IntegrationTests.Support;
using Sluice.Models;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary><c>sluice validate</c> compiles every model's SQL against its inputs' columns, on the recipe's engine (issue 19).</summary>
public sealed class ModelBindingTests
{
    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_misspelled_column_and_a_missing_comma_fail_with_the_model_file_and_line(string engine)
    {
        using var recipe = new TempFolder("bind-recipe");
        CopyRecipe(recipe.Path);
        Edit(recipe.Path, "models/mart/customer_ytd_spending.sql", "SUM(f.sales_amount)", "SUM(f.sales_amont)");
        Edit(recipe.Path, "models/mart/customer_days_since_last_purchase.sql", "AS reference_date,", "AS reference_date");
        var project = ModelsProject(recipe.Path);

        var errors = new ConfigErrors();
        var bound = await BindAsync(engine, project, errors);

        var messages = errors.All.Select(e => e.ToString()).ToList();
        messages.Count.ShouldBe(2, string.Join("\n", messages));
        var ytd = messages.Single(m => m.Contains("customer_ytd_spending.sql", StringComparison.Ordinal));
        ytd.ShouldContain($"customer_ytd_spending.sql:{LineOf(recipe.Path, "models/mart/customer_ytd_spending.sql", "sales_amont")}: (sql): does not compile on {engine}");
        ytd.ShouldContain("sales_amont");
        // The missing comma is found at the next token, on the line after it.
        messages.Single(m => m.Contains("customer_days_since_last_purchase.sql", StringComparison.Ordinal))
            .ShouldContain($"customer_days_since_last_purchase.sql:{LineOf(recipe.Path, "models/mart/customer_days_since_last_purchase.sql", "AS days_since_last_purchase")}: (sql): does not compile on {engine}");
        bound.ShouldBe(5);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task The_recipe_as_shipped_compiles_every_model(string engine)
    {
        using var recipe = new TempFolder("bind-recipe");
        CopyRecipe(recipe.Path);
        var errors = new ConfigErrors();
        (await BindAsync(engine, ModelsProject(recipe.Path), errors)).ShouldBe(7);
        errors.All.ShouldBeEmpty();
    }

    private static async Task<int> BindAsync(string engine, ModelProject project, ConfigErrors errors)
    {
        var none = new Dictionary<string, IReadOnlyList<(string Name, string Type)>>();
        if (engine == "postgres")
        {
            return await ModelBinder.BindPostgresAsync(project, none, new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString), errors, CancellationToken.None);
        }

        using var temp = new TempFolder("bind-duckdb");
        return ModelBinder.BindDuckDb(project, none, temp.Path, errors);
    }

    private static ModelProject ModelsProject(string folder)
    {
        var errors = new ConfigErrors();
        var project = ModelProject.Load(Path.Combine(folder, "models"), [], "dw.quarantine", errors);
        errors.All.ShouldBeEmpty();
        return project;
    }

    private static void CopyRecipe(string to) => SalesWarehouse.WarehouseHarness.CopyDirectory(TestPaths.Recipe("sales-warehouse"), to);

    private static void Edit(string folder, string file, string from, string to)
    {
        var path = Path.Combine(folder, file);
        var text = File.ReadAllText(path);
        text.ShouldContain(from);
        var at = text.LastIndexOf(from, StringComparison.Ordinal);
        File.WriteAllText(path, text[..at] + to + text[(at + from.Length)..]);
    }

    private static int LineOf(string folder, string file, string text) =>
        File.ReadAllLines(Path.Combine(folder, file)).Select((l, i) => (l, i)).First(x => x.l.Contains(text, StringComparison.Ordinal)).i + 1;
}
