using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// vehicle-files with its lake on a full disk (a 4 MiB tmpfs filled but for 32 KiB): the files wait in processing/,
/// the error says what is full without a stack trace, and once space is freed the running process lands them and the
/// result equals a clean run's.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class VehicleFilesDiskFullTests
{
    private const int Files = 10;
    private const int EventsPerFile = 4000;

    [Fact]
    public async Task A_full_lake_disk_keeps_files_in_processing_says_so_and_the_run_lands_them_once_space_is_freed()
    {
        using var root = new TempFolder("sluice-chaos-full");
        var input = root.Sub("input");
        new VehicleFilesGenerator(input, new VehicleFilesGeneratorOptions { Files = Files, EventsPerFile = EventsPerFile, Seed = 23, Vehicles = 100, LateRatio = 0.1 }, TimeProvider.System).WriteRound();
        var clean = root.Sub("clean");
        var full = root.Sub("full");
        CopyInput(input, clean);
        CopyInput(input, full);
        var cleanRun = await SluiceProcess.RunAsync(clean, "run", "vehicle-files", "--once");
        cleanRun.Code.ShouldBe(0, cleanRun.Err);

        using var disk = Tmpfs.Mount(Path.Combine(full, "lake"), megabytes: 4);
        disk.Fill(leftKiB: 32);

        // --once: exits non-zero, names the condition, no stack trace, nothing moved to failed/.
        var once = await SluiceProcess.RunAsync(full, "run", "vehicle-files", "--once");
        once.Code.ShouldNotBe(0, once.Err);
        once.Err.ShouldContain("no space left on device");
        once.Err.ShouldNotContain("Unhandled exception");
        once.Err.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
        Names(full, "failed").ShouldBeEmpty("a full disk is not the file's fault");
        Names(full, "processed").Count.ShouldBeLessThan(Files, "the disk must be full before the files land, or the test proves nothing");

        // A running process: waits, says so, and lands everything once space is freed, without a restart.
        using (var run = SluiceProcess.Start(full, "run", "vehicle-files"))
        {
            await run.WaitForOutputAsync("no space left on device", TimeSpan.FromSeconds(60));
            Names(full, "failed").ShouldBeEmpty();
            disk.Free();
            await WaitUntilAsync(() => Names(full, "processed").Count == Files && Names(full, "processing").Count == 0, TimeSpan.FromSeconds(90),
                () => $"processed {Names(full, "processed").Count}, processing {Names(full, "processing").Count}\n{run.Stderr}");
            (await run.StopAsync()).ShouldBe(0, run.Stderr);
            run.Stderr.ShouldNotContain("   at ", Case.Sensitive);
        }

        // The after-load job that met the full disk runs again (a restart runs it whatever happened before).
        var after = await SluiceProcess.RunAsync(full, "run", "vehicle-files", "--once");
        after.Code.ShouldBe(0, after.Err);

        var sent = (long)Files * EventsPerFile;
        var (landed, duplicated, lost) = await CompareRowsAsync(clean, full);
        ChaosFigures.Record(nameof(A_full_lake_disk_keeps_files_in_processing_says_so_and_the_run_lands_them_once_space_is_freed), "vehicle-files", "disk full (lake/ on a 4 MiB tmpfs)",
            sent, sent, landed, duplicated, lost, "acknowledged = records of the files accepted into incoming/; duplicated and lost counted row by row against a clean run");

        Names(full, "processed").ShouldBe(Names(clean, "processed"));
        Names(full, "failed").ShouldBeEmpty();
        foreach (var sql in new[]
        {
            "SELECT count(*) AS n, count(DISTINCT (vehicle_id, event_time, event_type)) AS d, sum(hash(vehicle_id, event_time, event_source, event_type, date)) AS h FROM raw_data.vehicle_events",
            "SELECT count(*) AS n, sum(hash(vehicle_id, report_time, status_source, status, date)) AS h FROM raw_data.vehicle_status",
            "SELECT * FROM reports.daily_summary ORDER BY day, vehicle_id",
        })
        {
            (await Query(full, sql)).ShouldBe(await Query(clean, sql), sql);
        }

        landed.ShouldBe(sent);
        (duplicated, lost).ShouldBe((0L, 0L));
    }

    /// <summary>Rows of both raw tables in <paramref name="actual"/> against <paramref name="expected"/>, as multisets: (rows, extra, missing).</summary>
    internal static async Task<(long Landed, long Duplicated, long Lost)> CompareRowsAsync(string expected, string actual)
    {
        const string Sql = "SELECT 'e', vehicle_id, CAST(event_time AS VARCHAR), event_source, event_type, count(*) FROM raw_data.vehicle_events GROUP BY ALL "
            + "UNION ALL SELECT 's', vehicle_id, CAST(report_time AS VARCHAR), status_source, status, count(*) FROM raw_data.vehicle_status GROUP BY ALL";
        var want = Multiset(await Query(expected, Sql));
        var got = Multiset(await Query(actual, Sql));
        long extra = 0, missing = 0;
        foreach (var key in want.Keys.Union(got.Keys))
        {
            var d = got.GetValueOrDefault(key) - want.GetValueOrDefault(key);
            if (d > 0) { extra += d; } else { missing -= d; }
        }

        return (got.Values.Sum(), extra, missing);
    }

    private static Dictionary<string, long> Multiset(string csv) =>
        csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => (Key: line[..line.LastIndexOf(',')], Count: long.Parse(line[(line.LastIndexOf(',') + 1)..], System.Globalization.CultureInfo.InvariantCulture)))
            .ToDictionary(r => r.Key, r => r.Count, StringComparer.Ordinal);

    private static List<string> Names(string data, string folder)
    {
        var path = Path.Combine(data, "vehicle-files", folder);
        return Directory.Exists(path) ? Directory.EnumerateFiles(path).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList() : [];
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"not reached within {timeout.TotalSeconds:0} s: {describe()}"); }
            await Task.Delay(100);
        }
    }
}
