using Shouldly;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary><c>models build</c>: run and test in dependency order, skipping what reads a model whose tests failed (issue 19).</summary>
public sealed class BuildTests
{
    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_failed_test_stops_the_models_downstream_and_spares_the_others(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.people", "/*\ntags: [nightly]\ntests:\n  - not_null: name\n*/\nSELECT id, name FROM raw.src WHERE day = {{ as_of }}");
        h.Model("mart.names", "SELECT count(*) AS n FROM dw.people");
        h.Model("dw.ids", "/*\ntags: [nightly]\n*/\nSELECT id FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, NULL)) v(id, name)");

        var project = h.Project();
        var outcomes = await h.Processor().BuildAsync(project.Select(["tag:nightly", "dw.people+"]), new DateOnly(2024, 3, 1), "manual", "backfill", CancellationToken.None);

        outcomes.Select(o => $"{o.Model.Name}:{o.Passed}:{o.Error}").ShouldBe(["dw.ids:True:", "dw.people:False:", "mart.names:False:skipped: dw.people failed"]);
        outcomes[1].Tests.Single().Failures.ShouldBe(1);
        (await h.Lines("SELECT count(*) FROM dw.ids")).ShouldBe(["2"]);
    }
}
