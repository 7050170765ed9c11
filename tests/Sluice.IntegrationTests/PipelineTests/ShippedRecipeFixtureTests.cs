using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.PipelineTests;

/// <summary>Every shipped recipe passes its own fixtures (recipes/&lt;r&gt;/tests/) through <c>sluice test</c>, end to end.</summary>
public sealed class ShippedRecipeFixtureTests
{
    [Theory]
    [InlineData("vehicle-files")]
    [InlineData("sales-warehouse")]
    [InlineData("tenant-analytics")]
    [InlineData("repeat-reminder")]
    public async Task Shipped_recipe_passes_its_fixtures(string recipe)
    {
        using var data = new TempFolder();

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(data.Path, "test", recipe);

        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stdout.ShouldContain($"{recipe}: ");
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
