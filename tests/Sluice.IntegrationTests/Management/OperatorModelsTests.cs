using System.Text.Json;
using Sluice.Models;
using static Sluice.IntegrationTests.Management.OperatorHost;

namespace Sluice.IntegrationTests.Management;

/// <summary><c>GET /api/models</c> against a running sales-warehouse: the model graph with each model's last run and its tests' latest results.</summary>
public sealed class OperatorModelsTests
{
    [Fact]
    public async Task Models_are_listed_with_dependencies_tags_last_run_and_the_latest_test_results()
    {
        await using var h = await StartAsync("sales-warehouse");
        var models = await ModelsAsync(h);
        models.Select(m => m.GetProperty("name").GetString()).Order(StringComparer.Ordinal).ShouldBe(
            ["dw.dim_customer", "dw.dim_product", "dw.dim_shop", "dw.fact_sales", "mart.current_customer", "mart.customer_days_since_last_purchase", "mart.customer_ytd_spending", "staging.stg_customer", "staging.stg_sales"]);
        var dim = models.Single(m => m.GetProperty("name").GetString() == "dw.dim_customer");
        dim.GetProperty("recipe").GetString().ShouldBe("sales-warehouse");
        dim.GetProperty("job").GetString().ShouldBe("daily");
        dim.GetProperty("kind").GetString().ShouldBe("snapshot");
        dim.GetProperty("file").GetString()!.ShouldEndWith(Path.Combine("models", "dw", "dim_customer.sql"));
        dim.GetProperty("dependsOn").EnumerateArray().Select(d => d.GetString()).ShouldBe(["staging.stg_customer"]);
        dim.GetProperty("tags").GetArrayLength().ShouldBe(0);
        dim.GetProperty("lastRun").ValueKind.ShouldBe(JsonValueKind.Null);
        var tests = dim.GetProperty("tests").EnumerateArray().ToList();
        tests.Select(t => t.GetProperty("name").GetString()).ShouldContain("unique(customer_key)");
        tests.ShouldAllBe(t => t.GetProperty("status").GetString() == "not run");

        // What sluice models test runs: its outcomes are kept, and the console shows the latest.
        var job = h.Recipe.Job("daily")!;
        var factory = (ModelsJobFactory)job.Factory;
        var model = factory.Options.Project.Find("dw.dim_customer")!;
        var outcomes = await factory.Processor(h.Engine.Services).TestAsync([model], CancellationToken.None);
        var shown = (await ModelsAsync(h)).Single(m => m.GetProperty("name").GetString() == "dw.dim_customer").GetProperty("tests").EnumerateArray().ToList();
        foreach (var outcome in outcomes)
        {
            var test = shown.Single(t => t.GetProperty("name").GetString() == outcome.Test.Describe());
            test.GetProperty("status").GetString().ShouldBe(outcome.Error is not null ? "error" : outcome.Passed ? "pass" : "fail", test.ToString());
            test.GetProperty("at").GetString()!.ShouldEndWith("Z");
        }

        // A run of the models job runs the models as of today: each model shows it as its last run.
        var runId = (await h.PostAsync("/api/jobs/sales-warehouse/daily/run", null)).Body.GetProperty("runId").GetInt64();
        await h.WaitAsync("/api/jobs/sales-warehouse/daily/runs", b => b.GetProperty("runs").EnumerateArray().Any(r => r.GetProperty("id").GetInt64() == runId && r.GetProperty("status").GetString() != "running"));
        var staged = (await ModelsAsync(h)).Single(m => m.GetProperty("name").GetString() == "staging.stg_customer").GetProperty("lastRun");
        staged.ValueKind.ShouldBe(JsonValueKind.Object, "the models job ran staging.stg_customer");
        staged.GetProperty("status").GetString().ShouldNotBeNullOrEmpty();
        staged.GetProperty("at").GetString()!.ShouldEndWith("Z");
    }

    private static async Task<List<JsonElement>> ModelsAsync(OperatorHost h)
    {
        var (status, body) = await h.GetAsync("/api/models");
        status.ShouldBe(200, body.ToString());
        return body.GetProperty("models").EnumerateArray().ToList();
    }
}
