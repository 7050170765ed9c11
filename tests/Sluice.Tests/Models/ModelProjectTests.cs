using Sluice.Core.Config;
using Sluice.Models;

namespace Sluice.Tests.Models;

public sealed class ModelProjectTests
{
    private static ModelDefinition Sql(string name, string sql, ConfigErrors errors) =>
        ModelFileParser.ParseSqlText($"{name}.sql", sql, name, errors)!;

    [Fact]
    public void Models_run_after_what_they_read_and_the_quarantine_follows_every_clean_model()
    {
        var errors = new ConfigErrors();
        var models = new[]
        {
            Sql("mart.kpi", "SELECT * FROM dw.fact f JOIN dw.dim d ON d.k = f.k", errors),
            Sql("dw.fact", "SELECT * FROM staging.stg", errors),
            Sql("dw.dim", "SELECT * FROM raw.customers", errors),
            Sql("mart.rejects", "SELECT rule, count(*) FROM dw.quarantine GROUP BY rule", errors),
            ModelFileParser.ParseCleanText("stg.yaml", "kind: clean\nsource: raw.sales\ncolumns:\n  a: {from: A}\nlookups:\n  - {column: a, in: dw.dim.k}\n", "staging.stg", errors)!,
        };

        var project = ModelProject.FromModels("models", models, ["raw.customers"], "dw.quarantine", errors);

        errors.All.ShouldBeEmpty();
        project.Models.Select(m => m.Name).ShouldBe(["dw.dim", "staging.stg", "dw.fact", "mart.kpi", "mart.rejects"]);
        project.Find("staging.stg")!.Dependencies.ShouldBe(["dw.dim"]);
        project.Find("mart.rejects")!.Dependencies.ShouldBe(["staging.stg"]);
        project.Sources.ShouldBe(["raw.customers", "raw.sales"]);
    }

    [Fact]
    public void Selectors_take_a_model_with_what_it_reads_or_what_reads_it_or_a_tag()
    {
        var errors = new ConfigErrors();
        var models = new[]
        {
            Sql("mart.kpi", "/*\ntags: [daily]\n*/\nSELECT * FROM dw.fact f JOIN dw.dim d ON d.k = f.k", errors),
            Sql("dw.fact", "SELECT * FROM staging.stg", errors),
            Sql("dw.dim", "/*\ntags: [daily, dims]\n*/\nSELECT * FROM raw.customers", errors),
            Sql("staging.stg", "SELECT * FROM raw.customers", errors),
        };
        var project = ModelProject.FromModels("models", models, ["raw.customers"], "dw.quarantine", errors);
        errors.All.ShouldBeEmpty();

        project.Select(["+dw.fact"]).Select(m => m.Name).ShouldBe(["staging.stg", "dw.fact"]);
        project.Select(["staging.stg+"]).Select(m => m.Name).ShouldBe(["staging.stg", "dw.fact", "mart.kpi"]);
        project.Select(["tag:dims", "dw.fact"]).Select(m => m.Name).ShouldBe(["dw.dim", "dw.fact"]);
        project.Select(["tag:daily"]).Select(m => m.Name).ShouldBe(["dw.dim", "mart.kpi"]);
        Should.Throw<Sluice.Core.SluiceException>(() => project.Select(["tag:weekly"])).Message.ShouldBe("no model has tag 'weekly' (tags: daily, dims).");
    }

    [Fact]
    public void A_cycle_is_named()
    {
        var errors = new ConfigErrors();
        var models = new[] { Sql("dw.a", "SELECT * FROM dw.b", errors), Sql("dw.b", "SELECT * FROM dw.a", errors) };

        ModelProject.FromModels("models", models, [], "dw.quarantine", errors);

        errors.All.Single().Message.ShouldBe("models depend on each other in a cycle: dw.a -> dw.b -> dw.a");
    }

    [Fact]
    public void Reading_an_unknown_relation_is_an_error()
    {
        var errors = new ConfigErrors();
        var models = new[] { Sql("dw.a", "SELECT * FROM raw.typo", errors) };

        ModelProject.FromModels("models", models, ["raw.customers"], "dw.quarantine", errors);

        errors.All.Single().ToString().ShouldStartWith("dw.a.sql:1: (sql): reads 'raw.typo', which is neither a model nor a declared source");
    }
}
