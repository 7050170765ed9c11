using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>Generated exports: the engines agree table for table, and a run killed mid-work and restarted equals a clean run.</summary>
public sealed class CrashAndEnginesTests
{
    private static SalesWarehouseGeneratorOptions Sample(int days) =>
        new() { Days = days, Customers = 400, SalesPerDay = 1500, Start = new DateOnly(2024, 2, 26), Seed = 11, DirtyRatio = 0.02, MoveRatio = 0.02 };

    [Fact]
    public async Task Duckdb_and_postgres_build_the_same_tables_from_the_same_files()
    {
        await using var duck = await WarehouseHarness.CreateAsync("duckdb");
        await using var pg = await WarehouseHarness.CreateAsync("postgres");
        foreach (var h in new[] { duck, pg })
        {
            new SalesWarehouseGenerator(h.Incoming, Sample(4), TimeProvider.System).Write();
            await h.RunOnceAsync();
        }

        var a = await duck.DumpAllAsync();
        var b = await pg.DumpAllAsync();
        foreach (var table in WarehouseHarness.ModelTables)
        {
            b[table].ShouldBe(a[table], $"{table} differs between duckdb and postgres");
        }

        (await duck.CountAsync("SELECT count(*) FROM dw.quarantine")).ShouldBeGreaterThan(20);
        (await duck.CountAsync("SELECT count(*) FROM dw.dim_customer WHERE NOT is_current")).ShouldBeGreaterThan(10);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_run_killed_mid_work_and_restarted_equals_a_clean_run(string engine)
    {
        await using var clean = await WarehouseHarness.CreateAsync(engine);
        new SalesWarehouseGenerator(clean.Incoming, Sample(8), TimeProvider.System).Write();
        await clean.RunOnceAsync();

        await using var crashed = await WarehouseHarness.CreateAsync(engine);
        new SalesWarehouseGenerator(crashed.Incoming, Sample(8), TimeProvider.System).Write();
        var env = new Dictionary<string, string>
        {
            ["SLUICE_WAREHOUSE"] = engine, ["PGHOST"] = ServerSettings.PgHost, ["PGPORT"] = ServerSettings.PgPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PGUSER"] = ServerSettings.PgUser, ["PGPASSWORD"] = ServerSettings.PgPassword, ["PGDATABASE"] = crashed.Database ?? ServerSettings.PgDatabase,
        };
        using (var first = SluiceProcess.Start(crashed.DataRoot, env, "run", crashed.RecipeFolder, "--once"))
        {
            await WaitForModelRunsAsync(crashed, first, 20);
            first.Kill();
        }

        var runs = new Sluice.Jobs.JobRunStore(crashed.Engine.Services.Metadata, TimeProvider.System).History("sales-warehouse/daily", 1000);
        runs.Count(r => r.Status == "succeeded").ShouldBeLessThan(8 * 9, "the kill came after the work was done: the test proves nothing");

        using (var second = SluiceProcess.Start(crashed.DataRoot, env, "run", crashed.RecipeFolder, "--once"))
        {
            (await second.WaitAsync(TimeSpan.FromMinutes(3))).ShouldBe(0, second.Stderr);
        }

        var expected = await clean.DumpAllAsync();
        var actual = await crashed.DumpAllAsync();
        foreach (var table in WarehouseHarness.ModelTables)
        {
            actual[table].ShouldBe(expected[table], $"{table} differs from a clean run after a kill and a restart");
        }

        using var test = SluiceProcess.Start(crashed.DataRoot, env, "models", "test", crashed.RecipeFolder);
        (await test.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, test.Stdout + test.Stderr);
        test.Stdout.ShouldContain("22 passed, 0 failed");
    }

    private static async Task WaitForModelRunsAsync(WarehouseHarness h, SluiceProcess process, int count)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) { throw new InvalidOperationException($"sluice exited before the kill.\n{process.Stdout}\n{process.Stderr}"); }
            using var c = h.Engine.Services.Metadata.Open();
            var done = c.Scalar<long>("SELECT count(*) FROM job_runs WHERE job LIKE 'sales-warehouse/daily/%' AND status = 'succeeded'");
            if (done >= count) { return; }
            await Task.Delay(20);
        }

        throw new TimeoutException($"fewer than {count} model runs within 2 minutes.\n{process.Stderr}");
    }
}
