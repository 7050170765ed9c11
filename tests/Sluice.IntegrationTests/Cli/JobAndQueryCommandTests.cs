using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Support.VehicleFiles;

namespace Sluice.IntegrationTests.Cli;

public sealed class JobAndQueryCommandTests
{
    [Fact]
    public async Task Job_run_backfill_history_query_formats_and_dlq_commands_work_end_to_end()
    {
        using var data = new TempFolder();
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        Write(incoming, "vehicles_events_1.json", Events(("V1", "2025-11-01T10:00:00Z", "idle"), ("V2", "2025-11-02T11:00:00Z", "braking"), ("V1", "2025-11-02T12:00:00Z", "speeding")));
        Write(incoming, "vehicles_events_2.json", "{\"vehicles_events\": [ {\"vehicle_id\": 7} ]}");
        (await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once")).Code.ShouldBe(0);

        var csv = await SluiceProcess.RunAsync(data.Path, "query", "SELECT vehicle_id, day, last_event_type FROM reports.daily_summary ORDER BY day, vehicle_id", "--format", "csv");
        csv.Out.ShouldBe("vehicle_id,day,last_event_type\nV1,2025-11-01,idle\nV1,2025-11-02,speeding\nV2,2025-11-02,braking\n");

        var json = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) AS n FROM raw_data.vehicle_events", "--format", "json");
        System.Text.Json.JsonDocument.Parse(json.Out).RootElement[0].GetProperty("n").GetInt64().ShouldBe(3);

        var write = await SluiceProcess.RunAsync(data.Path, "query", "DROP VIEW raw_data.vehicle_events");
        write.Code.ShouldBe(1);
        write.Err.ShouldContain("only read-only statements are allowed");

        var job = await SluiceProcess.RunAsync(data.Path, "job", "run", "vehicle-files/daily-summary", "--date", "2025-11-03");
        job.Code.ShouldBe(0, job.Err);
        job.Out.ShouldBe("vehicle-files/daily-summary as of 2025-11-03T00:00:00Z: nothing changed (2 days checked)\n");

        var backfill = await SluiceProcess.RunAsync(data.Path, "backfill", "vehicle-files/daily-summary", "--from", "2025-11-01", "--to", "2025-11-02T23:00:00Z");
        backfill.Code.ShouldBe(0, backfill.Err);
        backfill.Err.ShouldContain("backfill vehicle-files/daily-summary: 1/2 (2025-11-01)");
        backfill.Err.ShouldContain("backfill vehicle-files/daily-summary: 2/2 (2025-11-02)");
        backfill.Out.ShouldContain("vehicle-files/daily-summary 2025-11-01..2025-11-02: recomputed 2 days");

        var bad = await SluiceProcess.RunAsync(data.Path, "backfill", "vehicle-files/daily-summary", "--from", "2025-11-05", "--to", "2025-11-01");
        bad.Code.ShouldBe(1);
        bad.Err.ShouldContain("--to 2025-11-01 is before --from 2025-11-05");

        var history = await SluiceProcess.RunAsync(data.Path, "job", "history", "--job", "vehicle-files/daily-summary");
        history.Out.ShouldContain("backfill");
        history.Out.ShouldContain("succeeded");

        var dlq = await SluiceProcess.RunAsync(data.Path, "dlq", "list", "--format", "csv");
        dlq.Out.ShouldContain("files:vehicle-files,pending,\"failed/vehicles_events_2.json: line 1, record 1, field 'vehicle_id'\"");
        var id = dlq.Out.Split('\n')[1].Split(',')[0];
        var show = await SluiceProcess.RunAsync(data.Path, "dlq", "show", id);
        show.Out.ShouldContain("reason:   1 invalid record (policy reject_file)");
        show.Out.ShouldContain("\"failed_file\":\"vehicles_events_2.json\"");

        // Fix the file where it failed, replay it, and it lands.
        File.WriteAllText(Path.Combine(data.Path, "vehicle-files", "failed", "vehicles_events_2.json"), Events(("V7", "2025-11-02T23:00:00Z", "idle")));
        var replay = await SluiceProcess.RunAsync(data.Path, "dlq", "replay", id);
        replay.Code.ShouldBe(0, replay.Out + replay.Err);
        replay.Out.ShouldContain("1 replayed, 0 still failing");
        (await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once")).Code.ShouldBe(0);
        var after = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) AS n FROM reports.daily_summary WHERE vehicle_id = 'V7'", "--format", "csv");
        after.Out.ShouldBe("n\n1\n");
        (await SluiceProcess.RunAsync(data.Path, "dlq", "list", "--format", "csv")).Out.ShouldBe("id,created_utc,source,status,position,reason\n");
    }

    [Fact]
    public async Task Query_says_when_it_cut_the_result_and_fails_unless_the_limit_was_chosen()
    {
        using var data = new TempFolder();
        const string sql = "SELECT range AS n FROM range(100005)";

        // The default limit: the rows printed are the first 100,000 (CSV stays header and rows), stderr says so, exit 3.
        var csv = await SluiceProcess.RunAsync(data.Path, "query", sql, "--format", "csv");
        csv.Code.ShouldBe(3, csv.Err);
        csv.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(100_001);
        csv.Err.ShouldContain("the result has more than 100000 rows; only the first 100000 were printed");

        var json = await SluiceProcess.RunAsync(data.Path, "query", sql, "--format", "json");
        json.Code.ShouldBe(3, json.Err);
        System.Text.Json.JsonDocument.Parse(json.Out).RootElement.GetArrayLength().ShouldBe(100_000);
        json.Err.ShouldContain("only the first 100000 were printed");

        // A limit given on purpose: still said, exit 0; the table's count says it is not the whole.
        var table = await SluiceProcess.RunAsync(data.Path, "query", sql, "--max-rows", "10");
        table.Code.ShouldBe(0, table.Err);
        table.Out.ShouldEndWith("(10 rows shown: the result has more, cut at the row limit)\n");
        table.Err.ShouldContain("the result has more than 10 rows; only the first 10 were printed (--max-rows)");

        // Exactly the limit is no cut.
        var exact = await SluiceProcess.RunAsync(data.Path, "query", "SELECT range AS n FROM range(10)", "--max-rows", "10", "--format", "csv");
        (exact.Code, exact.Err).ShouldBe((0, ""));
        exact.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(11);
    }

    [Fact]
    public async Task Run_once_says_how_many_rows_went_to_dead_letters_and_fails_on_them_when_asked()
    {
        using var data = new TempFolder();
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        Write(incoming, "vehicles_events_1.json", "{\"vehicles_events\": [ {\"vehicle_id\": 7} ]}");

        var strict = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once", "--fail-on-dead-letters");
        strict.Code.ShouldBe(4, strict.Out + strict.Err);
        strict.Out.ShouldContain("1 row in 1 dead letter went to the dead-letter store; see ./sluice dlq list");

        Write(incoming, "vehicles_events_2.json", Events(("V1", "2025-11-01T10:00:00Z", "idle")));
        var clean = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once", "--fail-on-dead-letters");
        clean.Code.ShouldBe(0, clean.Out + clean.Err);
        clean.Out.ShouldNotContain("dead letter");
    }

    [Fact]
    public async Task Generate_writes_complete_files_with_late_events_and_broken_ones_on_request()
    {
        using var data = new TempFolder();

        var gen = await SluiceProcess.RunAsync(data.Path, "generate", "vehicle-files", "--files", "20", "--events-per-file", "200", "--bad-ratio", "0.5", "--late-ratio", "0.2", "--seed", "5");
        gen.Code.ShouldBe(0, gen.Err);
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        Directory.GetFiles(incoming).Length.ShouldBe(20);
        Directory.GetFiles(incoming, ".*").ShouldBeEmpty("temporary names are renamed when complete");

        (await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once")).Code.ShouldBe(0);
        var failed = Directory.GetFiles(Path.Combine(data.Path, "vehicle-files", "failed"), "*.error.json").Length;
        failed.ShouldBeInRange(4, 16);
        var days = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(DISTINCT date) AS d FROM raw_data.vehicle_events", "--format", "csv");
        int.Parse(days.Out.Split('\n')[1], System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(2, "late events land in earlier days' partitions");

        var badRatio = await SluiceProcess.RunAsync(data.Path, "generate", "vehicle-files", "--bad-ratio", "2");
        badRatio.Code.ShouldBe(1);
        badRatio.Err.ShouldContain("--bad-ratio must be between 0 and 1");
    }
}
