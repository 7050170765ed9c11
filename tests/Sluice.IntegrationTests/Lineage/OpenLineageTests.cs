using System.Text.Json;
using Sluice.IntegrationTests.SalesWarehouse;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Lineage;

/// <summary>
/// With <c>OPENLINEAGE_URL</c> set, <c>sluice run --once</c> of the sales warehouse posts a START and a COMPLETE (or FAIL)
/// run event for the job and for every model, with the tables each reads and writes, to a local receiver.
/// </summary>
public sealed class OpenLineageTests
{
    private const string Namespace = "lineage-test";

    [Fact]
    public async Task Every_job_and_model_run_sends_start_then_complete_with_its_tables()
    {
        await using var h = await WarehouseHarness.CreateAsync("duckdb");
        using var receiver = new LineageReceiver();

        var code = await RunOnceAsync(h, receiver);
        code.Process.ShouldBe(0, code.Err);

        var ytd = receiver.Of("sales-warehouse/daily/mart.customer_ytd_spending");
        ytd.Select(Type).ShouldBe(["START", "COMPLETE"]);
        ytd[0].GetProperty("run").GetProperty("runId").GetString().ShouldBe(ytd[1].GetProperty("run").GetProperty("runId").GetString());
        Guid.TryParse(ytd[0].GetProperty("run").GetProperty("runId").GetString(), out _).ShouldBeTrue();
        ytd[0].GetProperty("job").GetProperty("namespace").GetString().ShouldBe(Namespace);
        Datasets(ytd[1], "inputs").ShouldBe([$"{Namespace}/duckdb:dw.fact_sales"]);
        Datasets(ytd[1], "outputs").ShouldBe([$"{Namespace}/duckdb:mart.customer_ytd_spending"]);
        ytd[1].GetProperty("eventTime").GetString()!.ShouldMatch(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$");
        ytd[1].GetProperty("schemaURL").GetString().ShouldStartWith("https://openlineage.io/spec/");
        ytd[1].GetProperty("producer").GetString().ShouldStartWith("urn:sluice:");

        // A staging model reads the lake table its files landed in.
        var staging = receiver.Of("sales-warehouse/daily/staging.stg_sales");
        staging.Select(Type).ShouldBe(["START", "COMPLETE"]);
        Datasets(staging[0], "inputs").ShouldContain(d => d.StartsWith($"{Namespace}/lake:", StringComparison.Ordinal));

        // The job's own run spans its models: it starts before the first and completes after the last.
        var job = receiver.Of("sales-warehouse/daily");
        job.Select(Type).ShouldBe(["START", "COMPLETE"]);
        Datasets(job[0], "outputs").ShouldContain($"{Namespace}/duckdb:mart.customer_ytd_spending");
        var all = receiver.Events.ToList();
        all.IndexOf(job[0]).ShouldBeLessThan(all.IndexOf(staging[0]));
        all.IndexOf(job[1]).ShouldBeGreaterThan(all.IndexOf(ytd[1]));
        receiver.WrongPath.ShouldBe(0);
    }

    [Fact]
    public async Task A_failing_model_sends_fail_with_its_error()
    {
        await using var h = await WarehouseHarness.CreateAsync("duckdb");
        h.EditRecipe("models/mart/customer_ytd_spending.sql", sql => sql.Replace("SUM(f.sales_amount)", "SUM(f.no_such_column)", StringComparison.Ordinal));
        using var receiver = new LineageReceiver();

        var code = await RunOnceAsync(h, receiver);
        code.Process.ShouldNotBe(0);

        var ytd = receiver.Of("sales-warehouse/daily/mart.customer_ytd_spending");
        ytd.Select(Type).ShouldBe(["START", "FAIL"]);
        ytd[1].GetProperty("run").GetProperty("facets").GetProperty("errorMessage").GetProperty("message").GetString()!.ShouldContain("no_such_column");
        receiver.Of("sales-warehouse/daily/dw.fact_sales").Select(Type).ShouldBe(["START", "COMPLETE"]);
        receiver.Of("sales-warehouse/daily").Select(Type).ShouldBe(["START", "FAIL"]);
    }

    private static async Task<(int Process, string Err)> RunOnceAsync(WarehouseHarness h, LineageReceiver receiver)
    {
        var generate = await SluiceProcess.RunAsync(h.DataRoot, "generate", "sales-warehouse", "--days", "1", "--customers", "50", "--sales-per-day", "100", "--start", "2024-05-01", "--seed", "3");
        generate.Code.ShouldBe(0, generate.Err);
        var env = new Dictionary<string, string> { ["OPENLINEAGE_URL"] = receiver.Url, ["OPENLINEAGE_NAMESPACE"] = Namespace };
        using var run = SluiceProcess.Start(h.DataRoot, env, "run", h.RecipeFolder, "--once");
        var exit = await run.WaitAsync(TimeSpan.FromMinutes(5));
        return (exit, run.Stderr);
    }

    private static string Type(JsonElement e) => e.GetProperty("eventType").GetString()!;

    private static List<string> Datasets(JsonElement e, string which) =>
        e.GetProperty(which).EnumerateArray().Select(d => $"{d.GetProperty("namespace").GetString()}:{d.GetProperty("name").GetString()}").ToList();
}
