using Sluice.Connectors.Files;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Recipes.Generators;
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

    [Fact]
    public async Task Killed_between_the_dead_letter_and_the_move_to_failed_the_restart_shows_exactly_one_letter()
    {
        using var root = new TempFolder("sluice-crash-failed");
        var data = root.Sub("data");
        var drop = new DropFolder(Path.Combine(data, "vehicle-files"));
        drop.EnsureCreated();
        const string name = "vehicles_events_bad.json";
        File.WriteAllText(Path.Combine(drop.Incoming, name), "{\n  \"vehicles_events\": [\n    {\"vehicle_id\": \"V1\" \"event_time\": \"x\"}\n  ]\n}");

        using (var killed = SluiceProcess.Start(data, new Dictionary<string, string> { [CrashPoint.Variable] = CrashPoint.FailedFileLettered }, "run", "vehicle-files", "--once"))
        {
            (await killed.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(137, "SIGKILL at the crash point: " + killed.Stderr);
        }

        File.Exists(Path.Combine(drop.Processing, name)).ShouldBeTrue("the kill came after the letter, before the move");
        Directory.EnumerateFiles(drop.Failed).ShouldBeEmpty();
        (await Letters(data)).Count.ShouldBe(1, "the letter is recorded before the file moves");

        var restart = await SluiceProcess.RunAsync(data, "run", "vehicle-files", "--once");
        restart.Code.ShouldBe(0, restart.Err);

        Directory.EnumerateFiles(drop.Processing).ShouldBeEmpty();
        Directory.EnumerateFiles(drop.Failed).Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe([name, name + ".error.json"]);
        var letter = (await Letters(data)).ShouldHaveSingleItem();
        letter.ShouldContain($"failed/{name}: line 3, record 1");
    }

    [Fact]
    public async Task A_failed_file_without_its_letter_gets_it_at_the_next_start_and_only_once()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_bad.json", "{\"vehicles_events\": [{\"vehicle_id\": 1}]}");
        await f.RunOnceAsync();
        var letter = f.Engine.Services.DeadLetters.List("files:vehicle-files").ShouldHaveSingleItem();

        // What a kill between the move and the letter left behind in earlier versions: the file in failed/, no letter.
        using (var c = f.Engine.Services.Metadata.Open()) { c.Execute("DELETE FROM dead_letters", null); }
        f.Engine.Services.DeadLetters.List().ShouldBeEmpty();

        await f.RunOnceAsync();
        await f.RunOnceAsync();

        var recovered = f.Engine.Services.DeadLetters.List("files:vehicle-files").ShouldHaveSingleItem();
        (recovered.Position, recovered.Reason, recovered.Payload).ShouldBe((letter.Position, letter.Reason, letter.Payload));
    }

    [Fact]
    public void A_redo_takes_the_failed_name_whose_error_json_alone_a_kill_left_for_the_same_content()
    {
        using var root = new TempFolder("sluice-failed-name");
        var drop = new DropFolder(root.Path);
        drop.EnsureCreated();
        File.WriteAllText(Path.Combine(drop.Failed, "x.json.error.json"), new FileRejection("x.json", null, "bad", null, null, null, 1, [], "abc", DateTimeOffset.UnixEpoch).ToJson());

        // Killed between writing the .error.json and the move: the same content takes the name again, where its letter points.
        drop.FailedTarget("x.json", "abc").ShouldBe(Path.Combine(drop.Failed, "x.json"));
        drop.FailedTarget("x.json", "other content").ShouldBe(Path.Combine(drop.Failed, "x~1.json"));

        // A failed file already there is never overwritten, whatever its .error.json says.
        File.WriteAllText(Path.Combine(drop.Failed, "x.json"), "{}");
        drop.FailedTarget("x.json", "abc").ShouldBe(Path.Combine(drop.Failed, "x~1.json"));
    }

    /// <summary>The rows of <c>dlq list</c> (CSV, header dropped).</summary>
    private static async Task<List<string>> Letters(string data)
    {
        var (code, stdout, err) = await SluiceProcess.RunAsync(data, "dlq", "list", "--format", "csv");
        code.ShouldBe(0, err);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
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
