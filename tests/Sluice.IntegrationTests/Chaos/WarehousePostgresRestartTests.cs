using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.SalesWarehouse;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// sales-warehouse on the PostgreSQL engine with its server SIGKILLed in the middle of the models job: the run fails
/// loudly (a failed job run with the reason), and once the server is back a rerun builds exactly what a clean run builds.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class WarehousePostgresRestartTests
{
    private static SalesWarehouseGeneratorOptions Sample => new() { Days = 4, Customers = 300, SalesPerDay = 800, Start = new DateOnly(2024, 2, 26), Seed = 17, DirtyRatio = 0.02, MoveRatio = 0.02 };

    [Fact]
    public async Task The_warehouse_server_killed_mid_job_fails_the_run_loudly_and_a_rerun_equals_a_clean_run()
    {
        await using var clean = await WarehouseHarness.CreateAsync("postgres");
        new SalesWarehouseGenerator(clean.Incoming, Sample, TimeProvider.System).Write();
        await clean.RunOnceAsync();

        await using var pg = new ThrowawayPostgres();
        await pg.StartAsync();
        await using var crashed = await WarehouseHarness.CreateAsync("postgres", server: pg.ConnectionString());
        new SalesWarehouseGenerator(crashed.Incoming, Sample, TimeProvider.System).Write();
        var first = Task.Run(crashed.RunOnceAsync);
        var history = new JobRunStore(crashed.Engine.Services.Metadata, TimeProvider.System);
        await VehicleFilesDiskFullTests.WaitUntilAsync(() => first.IsCompleted || history.History("sales-warehouse/daily", 1000).Count(r => r.Status == "succeeded") >= 8,
            TimeSpan.FromMinutes(3), () => "fewer than 8 model runs");
        first.IsCompleted.ShouldBeFalse("the job finished before the kill: the test proves nothing");
        await pg.KillAsync();
        string? error = null;
        try
        {
            await first.WaitAsync(TimeSpan.FromMinutes(3));
        }
        catch (Exception e) when (e is Core.SluiceException or Npgsql.NpgsqlException or InvalidOperationException or IOException)
        {
            error = e.Message;
        }

        var failed = history.History("sales-warehouse/daily", 1000).Where(r => r.Status == "failed").ToList();
        (error is not null || failed.Count > 0).ShouldBeTrue("the run must fail loudly, not pass as if it had finished");

        await pg.StartAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();
        await crashed.RunOnceAsync();

        var expected = await clean.DumpAllAsync();
        var actual = await crashed.DumpAllAsync();
        var differing = WarehouseHarness.ModelTables.Where(t => actual[t] != expected[t]).ToList();
        var facts = await clean.CountAsync("SELECT count(*) FROM dw.fact_sales");
        var factsAfter = await crashed.CountAsync("SELECT count(*) FROM dw.fact_sales");
        ChaosFigures.Record(nameof(The_warehouse_server_killed_mid_job_fails_the_run_loudly_and_a_rerun_equals_a_clean_run), "sales-warehouse", "postgres (warehouse) SIGKILL mid-job, restarted, rerun",
            facts, facts, factsAfter, Math.Max(0, factsAfter - facts), Math.Max(0, facts - factsAfter),
            $"figures: dw.fact_sales rows against a clean run; {differing.Count} of {WarehouseHarness.ModelTables.Length} model tables differ; first run: {error ?? failed.FirstOrDefault()?.Message}");
        differing.ShouldBeEmpty();
    }
}
