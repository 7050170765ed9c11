using Sluice.Core.Metadata;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.SalesWarehouse;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// sales-warehouse (DuckDB engine) with its lake on a disk that fills while the models run after a load: the run says
/// what is full without a stack trace and keeps going, every model table stays as the last whole processing left it,
/// and once space is freed the running process finishes the days by itself; every model table then equals a clean
/// run's, and so after a restart.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class WarehouseDiskFullTests
{
    private const int Days = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    private static SalesWarehouseGeneratorOptions Sample() =>
        new() { Days = Days, Customers = 400, SalesPerDay = 1500, Start = new DateOnly(2024, 2, 26), Seed = 11, DirtyRatio = 0.02, MoveRatio = 0.02 };

    [Fact]
    public async Task A_lake_that_fills_during_a_models_run_says_so_publishes_nothing_half_done_resumes_once_freed_and_equals_a_clean_run()
    {
        await using var clean = await WarehouseHarness.CreateAsync("duckdb");
        new SalesWarehouseGenerator(clean.Incoming, Sample(), TimeProvider.System).Write();
        await clean.RunOnceAsync();
        var expected = await clean.DumpAllAsync();

        await using var full = await WarehouseHarness.CreateAsync("duckdb");
        using var disk = Tmpfs.Mount(Path.Combine(full.DataRoot, "lake"), megabytes: 64);
        using var input = new TempFolder("sw-input");
        new SalesWarehouseGenerator(input.Path, Sample(), TimeProvider.System).Write();
        var files = Directory.GetFiles(input.Path).Order(StringComparer.Ordinal).ToList();
        void Drop(IEnumerable<string> names)
        {
            Directory.CreateDirectory(full.Incoming);
            foreach (var f in names) { File.Move(f, Path.Combine(full.Incoming, Path.GetFileName(f))); }
        }

        // The first four days are loaded and modelled with space; the disk fills in the middle of the next processing.
        Drop(files.Where(f => string.CompareOrdinal(Path.GetFileName(f)[^12..], Sample().Start!.Value.AddDays(Days / 2).ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture) + ".csv") < 0));
        long runsAtFill, failedRuns;
        Dictionary<string, string> before;
        using (var run = SluiceProcess.Start(full.DataRoot, "run", full.RecipeFolder))
        {
            await VehicleFilesDiskFullTests.WaitUntilAsync(() => DaysDone(full) == Days / 2, Patience, () => $"{DaysDone(full)} days done\n{run.Stderr}");
            before = await full.DumpAllAsync();
            var firstRuns = ModelRuns(full, "succeeded");
            Drop(Directory.GetFiles(input.Path));
            await VehicleFilesDiskFullTests.WaitUntilAsync(() => run.HasExited || ModelRuns(full, "succeeded") >= firstRuns + 10, Patience, () => $"{ModelRuns(full, "succeeded")} model runs\n{run.Stderr}");
            disk.Fill(leftKiB: 0);
            runsAtFill = ModelRuns(full, "succeeded") - firstRuns;
            await run.WaitForOutputAsync("no space left on device", Patience);
            run.HasExited.ShouldBeFalse($"a full disk is waited out, not a reason to stop.\n{run.Stderr}");
            failedRuns = ModelRuns(full, "failed");

            // While the disk is full, every model table is as the last whole processing left it: nothing half-published.
            (await full.DumpAllAsync()).ShouldBe(before, "a processing that met the full disk publishes nothing");

            // Freed while running: the after-load run is tried again and finishes every day, without a restart or a new file.
            disk.Free();
            await VehicleFilesDiskFullTests.WaitUntilAsync(() => DaysDone(full) == Days, Patience, () => $"{DaysDone(full)} of {Days} days done\n{run.Stderr}");
            (await run.StopAsync()).ShouldBe(0, run.Stderr);
            run.Stderr.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
            run.Stderr.ShouldContain(Path.Combine(full.DataRoot, "lake"), Case.Sensitive, "the error names what is full");
        }

        var resumed = await full.DumpAllAsync();
        using (var restart = SluiceProcess.Start(full.DataRoot, "run", full.RecipeFolder, "--once"))
        {
            (await restart.WaitAsync(Patience)).ShouldBe(0, restart.Stderr);
        }

        var actual = await full.DumpAllAsync();
        var rows = WarehouseHarness.ModelTables.Sum(t => (long)expected[t].Split('\n').Length - 1);
        var differing = WarehouseHarness.ModelTables.Where(t => actual[t] != expected[t]).ToList();
        ChaosFigures.Record(nameof(A_lake_that_fills_during_a_models_run_says_so_publishes_nothing_half_done_resumes_once_freed_and_equals_a_clean_run), "sales-warehouse",
            "disk full (lake/ on a 64 MiB tmpfs filled mid models run), freed while running (the after-load run resumed), then restarted with --once", rows, rows, rows - differing.Sum(t => (long)expected[t].Split('\n').Length - 1), 0, 0,
            $"rows = all rows of the 10 model tables of a clean run; 4 days modelled with space, then {runsAtFill} model runs of the next processing done when the disk filled, {failedRuns} failed on it; tables differing from a clean run after the restart: {(differing.Count == 0 ? "none" : string.Join(", ", differing))}");

        runsAtFill.ShouldBeGreaterThan(0, "the disk fills in the middle of a processing, or the test proves less");
        failedRuns.ShouldBeGreaterThan(0, "a model run met the full disk");
        foreach (var table in WarehouseHarness.ModelTables)
        {
            resumed[table].ShouldBe(expected[table], $"{table} differs from a clean run once the run resumed after space was freed");
            actual[table].ShouldBe(expected[table], $"{table} differs from a clean run after a restart");
        }

        using var test = SluiceProcess.Start(full.DataRoot, "models", "test", full.RecipeFolder);
        (await test.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, test.Stdout + test.Stderr);
        test.Stdout.ShouldContain("22 passed, 0 failed");
    }

    private static long DaysDone(WarehouseHarness h)
    {
        using var c = h.Engine.Services.Metadata.Open();
        try
        {
            return c.Scalar<long>("SELECT count(*) FROM model_days WHERE scope = 'sales-warehouse/daily' AND status = 'done'");
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            return 0; // the models job has not created its tables yet
        }
    }

    private static long ModelRuns(WarehouseHarness h, string status)
    {
        using var c = h.Engine.Services.Metadata.Open();
        return c.Scalar<long>($"SELECT count(*) FROM job_runs WHERE job LIKE 'sales-warehouse/daily/%' AND status = '{status}'");
    }
}
