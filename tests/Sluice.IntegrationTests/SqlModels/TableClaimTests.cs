using Sluice.Core;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>Two recipes' models naming the same table (issue 19): the second is refused, the first's rows stay its own.</summary>
public sealed class TableClaimTests
{
    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_second_recipe_building_the_same_table_is_refused_before_it_writes(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("mart.daily_revenue", "SELECT day, sum(amount) AS revenue FROM raw.src WHERE day = {{ as_of }} GROUP BY day");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (10), (5)) v(amount)");

        (await h.Processor().ProcessAsync([], "manual", null, CancellationToken.None)).Message.ShouldContain("ran");

        var refused = await Should.ThrowAsync<SluiceException>(() => h.Processor("crm/daily").ProcessAsync([new DateOnly(2024, 3, 1)], "manual", null, CancellationToken.None));
        refused.Message.ShouldContain("crm/daily: model table(s) mart.daily_revenue (built by test/models) already belong to another models job");
        refused.Message.ShouldContain("Give this recipe's models a schema of their own");

        // The owner still runs, and its rows are its own.
        (await h.Processor().ProcessAsync([new DateOnly(2024, 3, 1)], "manual", null, CancellationToken.None)).Message.ShouldContain("ran");
        (await h.Lines("SELECT revenue FROM mart.daily_revenue")).ShouldBe(["15"]);
    }
}
