using Sluice.Generators;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Files;

/// <summary>SIGKILL in the middle of ingesting, twice, then a restart: the result must equal a clean run's.</summary>
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Killed_mid_file_and_restarted_gives_the_same_lake_and_summary_as_a_clean_run()
    {
        using var root = new TempFolder("sluice-crash");
        var input = root.Sub("input");
        new VehicleFilesGenerator(input, new VehicleFilesGeneratorOptions { Files = 10, EventsPerFile = 40_000, Seed = 11, Vehicles = 200, LateRatio = 0.1 }, TimeProvider.System).WriteRound();
        var clean = root.Sub("clean");
        var crashed = root.Sub("crashed");
        CopyInput(input, clean);
        CopyInput(input, crashed);

        var cleanRun = await SluiceProcess.RunAsync(clean, "run", "vehicle-files", "--once");
        cleanRun.Code.ShouldBe(0, cleanRun.Err);

        var kills = 0;
        foreach (var delayMs in new[] { 150, 700 })
        {
            using var run = SluiceProcess.Start(crashed, "run", "vehicle-files");
            var processing = Path.Combine(crashed, "vehicle-files", "processing");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !(Directory.Exists(processing) && Directory.EnumerateFiles(processing).Any()) && !run.HasExited)
            {
                await Task.Delay(10);
            }

            await Task.Delay(delayMs);
            if (Directory.EnumerateFiles(processing).Any()) { kills++; }
            run.Kill();
        }

        kills.ShouldBeGreaterThan(0, "at least one kill must land while a file is being ingested, or the test proves nothing");
        var restart = await SluiceProcess.RunAsync(crashed, "run", "vehicle-files", "--once");
        restart.Code.ShouldBe(0, restart.Err);

        Directory.EnumerateFiles(Path.Combine(crashed, "vehicle-files", "processing")).ShouldBeEmpty();
        Directory.EnumerateFiles(Path.Combine(crashed, "vehicle-files", "failed")).ShouldBeEmpty();
        Names(crashed, "processed").ShouldBe(Names(clean, "processed"));
        foreach (var sql in new[]
        {
            "SELECT count(*) AS n, count(DISTINCT (vehicle_id, event_time, event_type)) AS d, sum(hash(vehicle_id, event_time, event_source, event_type, date)) AS h FROM raw_data.vehicle_events",
            "SELECT count(*) AS n, sum(hash(vehicle_id, report_time, status_source, status, date)) AS h FROM raw_data.vehicle_status",
            "SELECT date, count(*) FROM raw_data.vehicle_events GROUP BY ALL ORDER BY ALL",
            "SELECT * FROM reports.daily_summary ORDER BY day, vehicle_id",
        })
        {
            var expected = await Query(clean, sql);
            (await Query(crashed, sql)).ShouldBe(expected, sql);
        }

        (await Query(clean, "SELECT count(*) FROM raw_data.vehicle_events")).ShouldBe("count_star()\n200000\n");
    }

    internal static async Task<string> Query(string data, string sql)
    {
        var (code, stdout, err) = await SluiceProcess.RunAsync(data, "query", sql, "--format", "csv");
        code.ShouldBe(0, err);
        return stdout;
    }

    internal static void CopyInput(string input, string data)
    {
        var incoming = Path.Combine(data, "vehicle-files", "incoming");
        Directory.CreateDirectory(incoming);
        foreach (var f in Directory.EnumerateFiles(input)) { File.Copy(f, Path.Combine(incoming, Path.GetFileName(f))); }
    }

    private static List<string> Names(string data, string folder) =>
        Directory.EnumerateFiles(Path.Combine(data, "vehicle-files", folder)).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToList();
}
