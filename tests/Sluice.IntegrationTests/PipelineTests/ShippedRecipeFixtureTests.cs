using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.PipelineTests;

/// <summary>
/// Every recipe folder under recipes/ (shipped recipes and examples) that has fixtures (tests/&lt;case&gt;/case.yaml)
/// passes them through <c>sluice test</c>, end to end on the real servers: found on disk, so a new recipe's fixtures
/// run here without a line added.
/// </summary>
public sealed class ShippedRecipeFixtureTests
{
    /// <summary>Each recipe with fixtures, as <c>sluice test</c> names it (relative to recipes/).</summary>
    public static TheoryData<string> RecipesWithFixtures() => new(WithFixtures());

    private static List<string> WithFixtures() =>
        Directory.EnumerateFiles(TestPaths.Recipes, "recipe.yaml", SearchOption.AllDirectories)
            .Select(f => Path.GetDirectoryName(f)!)
            .Where(d => Directory.Exists(Path.Combine(d, "tests")) && Directory.EnumerateFiles(Path.Combine(d, "tests"), "case.yaml", SearchOption.AllDirectories).Any())
            .Select(d => Path.GetRelativePath(TestPaths.Recipes, d).Replace('\\', '/'))
            .Order(StringComparer.Ordinal).ToList();

    [Fact]
    public void Every_shipped_recipe_and_example_has_fixtures()
    {
        var recipes = Directory.EnumerateFiles(TestPaths.Recipes, "recipe.yaml", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestPaths.Recipes, Path.GetDirectoryName(f)!).Replace('\\', '/'))
            .Order(StringComparer.Ordinal).ToList();
        recipes.Count.ShouldBeGreaterThanOrEqualTo(11, "five recipes and six examples");

        WithFixtures().ShouldBe(recipes, "each recipe folder holds tests/<case>/case.yaml");
    }

    [Theory]
    [MemberData(nameof(RecipesWithFixtures))]
    public async Task Recipe_passes_its_fixtures(string recipe)
    {
        using var data = new TempFolder();

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(data.Path, "test", recipe);

        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stdout.ShouldContain($": ok (");
        stdout.ShouldNotContain("FAILED");
    }

    [Fact]
    public async Task Sales_warehouse_runs_its_fixtures_with_models_on_postgres_too()
    {
        using var data = new TempFolder();

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(data.Path, "test", "sales-warehouse", "--servers");

        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stdout.ShouldContain("sales-warehouse/late-sales (models on postgres): ok");
    }
}
