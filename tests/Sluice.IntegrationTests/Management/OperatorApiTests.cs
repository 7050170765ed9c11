using System.Text.Json;
using Sluice.Core.DeadLetters;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.OperatorHost;

namespace Sluice.IntegrationTests.Management;

/// <summary>
/// The console's operator routes over real HTTP against a running vehicle-files host (docs/CONSOLE.md, "Operator API"):
/// dead letters listed, filtered, shown, edited, replayed into the lake and discarded; jobs run now and backfilled with
/// progress and cancel; admin only; bad input is a 4xx that says what is wrong.
/// </summary>
public sealed class OperatorApiTests
{
    private static readonly string[] Routes =
    [
        "GET /api/deadletters", "GET /api/deadletters/1", "POST /api/deadletters/1/edit", "POST /api/deadletters/replay", "POST /api/deadletters/discard",
        "GET /api/jobs", "GET /api/jobs/vehicle-files/daily-summary/runs", "POST /api/jobs/vehicle-files/daily-summary/run",
        "POST /api/jobs/vehicle-files/daily-summary/backfill", "GET /api/backfills/x", "POST /api/backfills/x/cancel", "GET /api/models",
    ];

    [Fact]
    public async Task Every_operator_route_answers_401_without_a_token_and_403_to_reader_and_writer_tokens()
    {
        await using var h = await StartAsync();
        foreach (var route in Routes)
        {
            var (method, path) = (route.Split(' ')[0], route.Split(' ')[1]);
            foreach (var (token, expected) in new[] { ((string?)null, 401), ("reader", 403), ("writer", 403), ("sk_nonsense", 401) })
            {
                var (status, body) = method == "GET" ? await h.GetAsync(path, token) : await h.PostAsync(path, new { ids = new[] { 1 }, reason = "x" }, token);
                status.ShouldBe(expected, $"{route} with {token ?? "no token"}: {body}");
                body.GetProperty("error").GetString().ShouldNotBeNullOrEmpty();
            }
        }

        (await h.PostAsync("/api/deadletters/discard", new { ids = new[] { 1 }, reason = "x" })).Status.ShouldBe(404, "the admin token passes (and letter 1 does not exist)");
    }

    [Fact]
    public async Task A_quarantined_record_is_listed_shown_edited_and_replayed_into_the_lake_and_another_is_discarded_with_its_reason()
    {
        await using var h = await StartAsync();
        VehicleFiles.Write(h.Incoming, "fleet_1.json", Fleet(Record("V1", "start"), Record("V2", null)));
        var list = await h.WaitAsync("/api/deadletters?recipe=vehicle-files", b => b.GetProperty("total").GetInt64() == 1);
        var item = list.GetProperty("items")[0];
        item.GetProperty("recipe").GetString().ShouldBe("vehicle-files");
        item.GetProperty("source").GetString().ShouldBe("files:vehicle-files/fleet_events");
        item.GetProperty("status").GetString().ShouldBe("pending");
        item.GetProperty("reason").GetString().ShouldBe("missing required field");
        item.GetProperty("position").GetString().ShouldBe("fleet_1.json: line 3, record 2, field 'event_type'");
        item.GetProperty("createdAt").GetString()!.ShouldEndWith("Z");
        item.GetProperty("preview").GetString().ShouldBe(Record("V2", null));
        var id = item.GetProperty("id").GetInt64();
        h.Engine.Count("SELECT count(*) FROM raw_data.fleet_events").ShouldBe(1, "the good record landed");

        // Filters: each part narrows, the total counts all matches.
        (await h.GetAsync("/api/deadletters?reason=REQUIRED&source=files:vehicle-files/fleet")).Body.GetProperty("total").GetInt64().ShouldBe(1);
        (await h.GetAsync("/api/deadletters?status=replayed")).Body.GetProperty("total").GetInt64().ShouldBe(0);
        (await h.GetAsync("/api/deadletters?recipe=tenant-analytics")).Body.GetProperty("total").GetInt64().ShouldBe(0);
        (await h.GetAsync("/api/deadletters?until=2000-01-01")).Body.GetProperty("total").GetInt64().ShouldBe(0);
        (await h.GetAsync("/api/deadletters?since=2000-01-01&limit=1&offset=1")).Body.GetProperty("items").GetArrayLength().ShouldBe(0);

        var (shown, letter) = await h.GetAsync($"/api/deadletters/{id}");
        shown.ShouldBe(200, letter.ToString());
        letter.GetProperty("raw").GetString().ShouldBe(Record("V2", null));
        letter.GetProperty("position").GetString()!.ShouldContain("record 2");
        letter.GetProperty("edits").GetArrayLength().ShouldBe(0);

        // Still invalid as it is: the replay fails, the letter stays pending with the newest reason.
        var (_, first) = await h.PostAsync("/api/deadletters/replay", new { ids = new[] { id } });
        first.GetProperty("replayed").GetInt32().ShouldBe(0);
        first.GetProperty("failed")[0].GetProperty("reason").GetString().ShouldBe("field 'event_type': missing required field");

        var fixedRecord = Record("V2", "stop");
        var (edited, afterEdit) = await h.PostAsync($"/api/deadletters/{id}/edit", new { raw = fixedRecord, note = "sensor omitted the type; it was a stop" });
        edited.ShouldBe(200, afterEdit.ToString());
        afterEdit.GetProperty("raw").GetString().ShouldBe(fixedRecord);
        var edit = afterEdit.GetProperty("edits").EnumerateArray().Single();
        edit.GetProperty("before").GetString().ShouldBe(Record("V2", null));
        edit.GetProperty("after").GetString().ShouldBe(fixedRecord);
        edit.GetProperty("note").GetString().ShouldBe("sensor omitted the type; it was a stop");
        edit.GetProperty("by").GetString()!.ShouldStartWith("token ");
        edit.GetProperty("at").GetString()!.ShouldEndWith("Z");

        var (replayStatus, replay) = await h.PostAsync("/api/deadletters/replay", new { ids = new[] { id } });
        replayStatus.ShouldBe(200, replay.ToString());
        replay.GetProperty("replayed").GetInt32().ShouldBe(1, replay.ToString());
        replay.GetProperty("failed").GetArrayLength().ShouldBe(0);
        h.Engine.Count("SELECT count(*) FROM raw_data.fleet_events WHERE vehicle_id = 'V2' AND event_type = 'stop'").ShouldBe(1, "the edited record landed in the lake");
        (await h.GetAsync($"/api/deadletters/{id}")).Body.GetProperty("status").GetString().ShouldBe("replayed");
        (await h.PostAsync($"/api/deadletters/{id}/edit", new { raw = "{}" })).Status.ShouldBe(409, "a replayed letter is not edited");
        (await h.PostAsync("/api/deadletters/replay", new { ids = new[] { id } })).Body.GetProperty("failed")[0].GetProperty("reason").GetString()!.ShouldContain("not pending");

        // Discard: kept with status and reason, not deleted, and never replayed by a filter afterwards.
        VehicleFiles.Write(h.Incoming, "fleet_2.json", Fleet(Record("V3", null)));
        var second = (await h.WaitAsync("/api/deadletters?status=pending", b => b.GetProperty("total").GetInt64() == 1)).GetProperty("items")[0].GetProperty("id").GetInt64();
        var (discardStatus, discard) = await h.PostAsync("/api/deadletters/discard", new { ids = new[] { second }, reason = "test vehicle, not ours" });
        discardStatus.ShouldBe(200, discard.ToString());
        discard.GetProperty("discarded").GetInt64().ShouldBe(1);
        var kept = (await h.GetAsync($"/api/deadletters/{second}")).Body;
        kept.GetProperty("status").GetString().ShouldBe(DeadLetterStore.Discarded);
        kept.GetProperty("discardReason").GetString().ShouldBe("test vehicle, not ours");
        kept.GetProperty("raw").GetString().ShouldBe(Record("V3", null));
        (await h.GetAsync("/api/deadletters?status=discarded")).Body.GetProperty("total").GetInt64().ShouldBe(1);
        (await h.PostAsync("/api/deadletters/replay", new { filter = new { recipe = "vehicle-files" } })).Body.GetProperty("replayed").GetInt32().ShouldBe(0);
        h.Engine.Count("SELECT count(*) FROM raw_data.fleet_events WHERE vehicle_id = 'V3'").ShouldBe(0);
    }

    [Fact]
    public async Task A_replay_by_filter_replays_the_pending_letters_it_matches_and_a_discard_by_filter_sets_the_rest_aside()
    {
        await using var h = await StartAsync();
        VehicleFiles.Write(h.Incoming, "fleet_1.json", Fleet(Record("V1", null), Record("V2", null)));
        var listed = await h.WaitAsync("/api/deadletters", b => b.GetProperty("total").GetInt64() == 2);
        foreach (var item in listed.GetProperty("items").EnumerateArray())
        {
            var id = item.GetProperty("id").GetInt64();
            var vehicle = JsonDocument.Parse(item.GetProperty("preview").GetString()!).RootElement.GetProperty("vehicle_id").GetString()!;
            if (vehicle == "V1") { (await h.PostAsync($"/api/deadletters/{id}/edit", new { raw = Record("V1", "idle") })).Status.ShouldBe(200); }
        }

        var (_, replay) = await h.PostAsync("/api/deadletters/replay", new { filter = new { recipe = "vehicle-files", source = "files:vehicle-files/fleet_events" } });
        replay.GetProperty("replayed").GetInt32().ShouldBe(1, replay.ToString());
        replay.GetProperty("failed").GetArrayLength().ShouldBe(1, "V2 is still invalid");
        h.Engine.Count("SELECT count(*) FROM raw_data.fleet_events WHERE vehicle_id = 'V1'").ShouldBe(1);

        var (_, discard) = await h.PostAsync("/api/deadletters/discard", new { filter = new { recipe = "vehicle-files", reason = "missing" }, reason = "no type known" });
        discard.GetProperty("discarded").GetInt64().ShouldBe(1);
        (await h.GetAsync("/api/deadletters?status=pending")).Body.GetProperty("total").GetInt64().ShouldBe(0);
        (await h.GetAsync("/api/deadletters?status=all")).Body.GetProperty("total").GetInt64().ShouldBe(2, "nothing was deleted");
    }

    [Theory]
    [InlineData("GET", "/api/deadletters?status=bogus", null, 400, "status: 'bogus' is not one of pending, replayed, discarded, all")]
    [InlineData("GET", "/api/deadletters?since=yesterday", null, 400, "since: 'yesterday' is not a date")]
    [InlineData("GET", "/api/deadletters?since=2025-01-02&until=2025-01-01", null, 400, "until: 2025-01-01 is not after since 2025-01-02")]
    [InlineData("GET", "/api/deadletters?limit=0", null, 400, "limit: '0' is not a whole number from 1 to 1000")]
    [InlineData("GET", "/api/deadletters?offset=-1", null, 400, "offset: '-1' is not a whole number")]
    [InlineData("GET", "/api/deadletters/abc", null, 400, "id: 'abc' is not a dead-letter id")]
    [InlineData("GET", "/api/deadletters/999", null, 404, "id: no dead letter with id 999")]
    [InlineData("POST", "/api/deadletters/999/edit", """{"raw": "{}"}""", 404, "id: no dead letter with id 999")]
    [InlineData("POST", "/api/deadletters/999/edit", """{"note": "x"}""", 400, "raw: missing")]
    [InlineData("POST", "/api/deadletters/999/edit", "not json", 400, "body")]
    [InlineData("POST", "/api/deadletters/999/edit", """{"raw": 5}""", 400, "body at $.raw")]
    [InlineData("POST", "/api/deadletters/replay", """{"ids": [999]}""", 404, "id: no dead letter with id 999")]
    [InlineData("POST", "/api/deadletters/replay", """{}""", 400, "give either ids")]
    [InlineData("POST", "/api/deadletters/replay", """{"ids": []}""", 400, "ids: give from 1 to 10000 letter ids")]
    [InlineData("POST", "/api/deadletters/replay", """{"ids": [1], "filter": {}}""", 400, "give either ids")]
    [InlineData("POST", "/api/deadletters/replay", """{"filter": {"status": "replayed"}}""", 400, "only pending letters are replayed")]
    [InlineData("POST", "/api/deadletters/replay", """{"filter": {"since": "2025-13-01"}}""", 400, "filter.since: '2025-13-01' is not a date")]
    [InlineData("POST", "/api/deadletters/replay", """{"filter": {"colour": "red"}}""", 400, "colour")]
    [InlineData("POST", "/api/deadletters/discard", """{"ids": [1]}""", 400, "reason: missing")]
    [InlineData("POST", "/api/deadletters/discard", """{"filter": {"status": "nope"}, "reason": "x"}""", 400, "filter.status: 'nope'")]
    [InlineData("GET", "/api/jobs/nope/daily-summary/runs", null, 404, "recipe: 'nope' does not run in this process (running: vehicle-files)")]
    [InlineData("GET", "/api/jobs/vehicle-files/nope/runs", null, 404, "job: recipe 'vehicle-files' has no job 'nope' (jobs: daily-summary)")]
    [InlineData("GET", "/api/jobs/vehicle-files/daily-summary/runs?limit=x", null, 400, "limit: 'x'")]
    [InlineData("POST", "/api/jobs/nope/x/run", null, 404, "recipe: 'nope'")]
    [InlineData("POST", "/api/jobs/vehicle-files/daily-summary/backfill", """{"from": "2024-05-01"}""", 400, "to: missing (a date, YYYY-MM-DD)")]
    [InlineData("POST", "/api/jobs/vehicle-files/daily-summary/backfill", """{"from": "2024-13-01", "to": "2024-05-01"}""", 400, "from: '2024-13-01' is not a date (YYYY-MM-DD)")]
    [InlineData("POST", "/api/jobs/vehicle-files/daily-summary/backfill", """{"from": "2024-05-03", "to": "2024-05-01"}""", 400, "to: 2024-05-01 is before from 2024-05-03")]
    [InlineData("POST", "/api/jobs/vehicle-files/daily-summary/backfill", """{"from": "0001-01-01", "to": "9999-12-31"}""", 400, "a backfill covers at most 36600")]
    [InlineData("POST", "/api/jobs/vehicle-files/daily-summary/backfill", "[1,2]", 400, "body")]
    [InlineData("GET", "/api/backfills/nope", null, 404, "id: no backfill 'nope' in this process")]
    [InlineData("POST", "/api/backfills/nope/cancel", null, 404, "id: no backfill 'nope'")]
    public async Task Bad_input_is_a_4xx_with_a_clear_error(string method, string path, string? body, int status, string error)
    {
        await using var h = await StartAsync();
        var (code, answer) = method == "GET" ? await h.GetAsync(path) : await h.PostAsync(path, body);
        code.ShouldBe(status, answer.ToString());
        answer.GetProperty("error").GetString()!.ShouldContain(error);
    }

    [Fact]
    public async Task Jobs_show_schedule_and_next_run_and_run_now_runs_once_recorded_like_a_scheduled_run()
    {
        await using var h = await StartAsync();
        var job = (await h.GetAsync("/api/jobs")).Body.GetProperty("jobs").EnumerateArray().Single();
        job.GetProperty("recipe").GetString().ShouldBe("vehicle-files");
        job.GetProperty("job").GetString().ShouldBe("daily-summary");
        job.GetProperty("schedule").GetString().ShouldBe("0 1 * * *");
        var next = DateTimeOffset.Parse(job.GetProperty("nextRunAt").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        job.GetProperty("nextRunAt").GetString()!.ShouldEndWith("T01:00:00.000Z");
        next.ShouldBeGreaterThan(DateTimeOffset.UtcNow);
        next.ShouldBeLessThanOrEqualTo(DateTimeOffset.UtcNow.AddDays(1));
        job.GetProperty("running").GetBoolean().ShouldBeFalse();
        job.GetProperty("lastRun").ValueKind.ShouldBe(JsonValueKind.Null);

        var (status, started) = await h.PostAsync("/api/jobs/vehicle-files/daily-summary/run", null);
        status.ShouldBe(202, started.ToString());
        var runId = started.GetProperty("runId").GetInt64();
        var runs = await h.WaitAsync("/api/jobs/vehicle-files/daily-summary/runs", b => b.GetProperty("runs").EnumerateArray().Any(r => r.GetProperty("id").GetInt64() == runId && r.GetProperty("status").GetString() != "running"));
        var run = runs.GetProperty("runs").EnumerateArray().Single();
        run.GetProperty("status").GetString().ShouldBe("succeeded", run.ToString());
        run.GetProperty("trigger").GetString().ShouldBe("manual");
        run.GetProperty("date").GetString().ShouldBe(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        run.GetProperty("finishedAt").GetString()!.ShouldEndWith("Z");
        run.GetProperty("message").GetString().ShouldNotBeNullOrEmpty();
        var last = (await h.GetAsync("/api/jobs")).Body.GetProperty("jobs")[0].GetProperty("lastRun");
        last.GetProperty("id").GetInt64().ShouldBe(runId);
        last.GetProperty("status").GetString().ShouldBe("succeeded");
    }

    /// <summary>The after-load run the file started has ended (a backfill or run now meanwhile is refused: 409).</summary>
    private static Task<JsonElement> AfterLoadRanAsync(OperatorHost h) =>
        h.WaitAsync("/api/jobs", b => b.GetProperty("jobs")[0].GetProperty("lastRun") is { ValueKind: JsonValueKind.Object } last && last.GetProperty("status").GetString() != "running");

    [Fact]
    public async Task A_backfill_recomputes_each_day_with_live_progress_to_completion()
    {
        await using var h = await StartAsync();
        VehicleFiles.Write(h.Incoming, "vehicles_events_1.json", VehicleFiles.Events(("V1", "2024-05-01T10:00:00Z", "start"), ("V1", "2024-05-02T10:00:00Z", "stop")));
        await AfterLoadRanAsync(h);

        var (status, started) = await h.PostAsync("/api/jobs/vehicle-files/daily-summary/backfill", new { from = "2024-05-01", to = "2024-05-03" });
        status.ShouldBe(202, started.ToString());
        var id = started.GetProperty("backfillId").GetString()!;
        var done = await h.WaitAsync($"/api/backfills/{id}", b => b.GetProperty("state").GetString() != "running");
        done.GetProperty("state").GetString().ShouldBe("succeeded", done.ToString());
        done.GetProperty("recipe").GetString().ShouldBe("vehicle-files");
        done.GetProperty("job").GetString().ShouldBe("daily-summary");
        done.GetProperty("from").GetString().ShouldBe("2024-05-01");
        done.GetProperty("to").GetString().ShouldBe("2024-05-03");
        done.GetProperty("total").GetInt32().ShouldBe(3);
        done.GetProperty("done").GetInt32().ShouldBe(3);
        done.GetProperty("failed").GetInt32().ShouldBe(0);
        done.GetProperty("message").GetString().ShouldBe("3 day(s) recomputed: 2024-05-01..2024-05-03");

        var runs = (await h.GetAsync("/api/jobs/vehicle-files/daily-summary/runs?limit=3")).Body.GetProperty("runs").EnumerateArray().ToList();
        runs.Select(r => r.GetProperty("date").GetString()).ShouldBe(["2024-05-03", "2024-05-02", "2024-05-01"], "one run per day, dated by its day");
        runs.ShouldAllBe(r => r.GetProperty("trigger").GetString() == "backfill" && r.GetProperty("status").GetString() == "succeeded");
        h.Engine.Count("SELECT count(*) FROM reports.daily_summary WHERE day IN ('2024-05-01', '2024-05-02')").ShouldBe(2);
    }

    [Fact]
    public async Task A_cancelled_backfill_stops_and_says_which_days_finished_and_run_now_meanwhile_is_409()
    {
        await using var h = await StartAsync();
        VehicleFiles.Write(h.Incoming, "vehicles_events_1.json", VehicleFiles.Events(("V1", "2024-05-01T10:00:00Z", "start")));
        await AfterLoadRanAsync(h);

        // Decades of days: far more than can finish between the first day and the cancel.
        var id = (await h.PostAsync("/api/jobs/vehicle-files/daily-summary/backfill", new { from = "1990-01-01", to = "2024-12-31" })).Body.GetProperty("backfillId").GetString()!;
        var running = await h.WaitAsync($"/api/backfills/{id}", b => b.GetProperty("done").GetInt32() >= 2);
        running.GetProperty("state").GetString().ShouldBe("running");
        running.GetProperty("total").GetInt32().ShouldBe(12_784);
        (await h.GetAsync("/api/jobs")).Body.GetProperty("jobs")[0].GetProperty("running").GetBoolean().ShouldBeTrue();

        var (busy, refused) = await h.PostAsync("/api/jobs/vehicle-files/daily-summary/run", null);
        busy.ShouldBe(409, refused.ToString());
        refused.GetProperty("error").GetString()!.ShouldContain("already running");
        (await h.PostAsync("/api/jobs/vehicle-files/daily-summary/backfill", new { from = "2024-05-01", to = "2024-05-01" })).Status.ShouldBe(409);

        var (cancelStatus, cancel) = await h.PostAsync($"/api/backfills/{id}/cancel", null);
        cancelStatus.ShouldBe(200, cancel.ToString());
        cancel.GetProperty("state").GetString().ShouldBe("cancelled");
        var end = (await h.GetAsync($"/api/backfills/{id}")).Body;
        var finished = end.GetProperty("done").GetInt32();
        finished.ShouldBeInRange(2, 12_783);
        var lastDay = new DateOnly(1990, 1, 1).AddDays(finished - 1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        end.GetProperty("message").GetString()!.ShouldStartWith($"cancelled after ");
        end.GetProperty("message").GetString()!.ShouldContain($"finished: 1990-01-01..{lastDay}");

        // The day in progress was cancelled (recorded as interrupted); the job is free again.
        var runs = (await h.GetAsync("/api/jobs/vehicle-files/daily-summary/runs?limit=2")).Body.GetProperty("runs").EnumerateArray().ToList();
        runs[0].GetProperty("status").GetString().ShouldBeOneOf("interrupted", "succeeded");
        (await h.PostAsync("/api/jobs/vehicle-files/daily-summary/run", null)).Status.ShouldBe(202);
    }
}
