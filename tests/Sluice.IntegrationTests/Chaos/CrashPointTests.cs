using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;
using Sluice.Serving.Auth;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// SIGKILL exactly at each commit point (<c>SLUICE_CRASH_AT</c>, see <see cref="Core.CrashPoint"/>), then a restart:
/// nothing acknowledged is lost and nothing lands twice. The timed kills of the older crash tests hit these points by
/// chance; here each one is hit on purpose, and the process is checked to have died there.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class CrashPointTests
{
    [Theory]
    [InlineData("files.claimed")]
    [InlineData("lake.renamed")]
    [InlineData("files.committed")]
    public async Task Vehicle_files_killed_at_a_commit_point_and_restarted_equals_a_clean_run(string point)
    {
        using var root = new TempFolder("sluice-chaos-point");
        var input = root.Sub("input");
        new VehicleFilesGenerator(input, new VehicleFilesGeneratorOptions { Files = 6, EventsPerFile = 1500, Seed = 31, Vehicles = 60, LateRatio = 0.1 }, TimeProvider.System).WriteRound();
        var clean = root.Sub("clean");
        var crashed = root.Sub("crashed");
        CopyInput(input, clean);
        CopyInput(input, crashed);
        (await SluiceProcess.RunAsync(clean, "run", "vehicle-files", "--once")).Code.ShouldBe(0);

        await ShouldDieAtAsync(crashed, point + ":2", "run", "vehicle-files", "--once");
        var restart = await SluiceProcess.RunAsync(crashed, "run", "vehicle-files", "--once");
        restart.Code.ShouldBe(0, restart.Err);

        var (landed, duplicated, lost) = await VehicleFilesDiskFullTests.CompareRowsAsync(clean, crashed);
        ChaosFigures.Record($"{nameof(Vehicle_files_killed_at_a_commit_point_and_restarted_equals_a_clean_run)}({point})", "vehicle-files", $"SIGKILL at {point} (time 2)",
            6 * 1500, 6 * 1500, landed, duplicated, lost, "acknowledged = records of the files accepted into incoming/");
        (duplicated, lost).ShouldBe((0L, 0L));
        Directory.EnumerateFiles(Path.Combine(crashed, "vehicle-files", "processing")).ShouldBeEmpty();
        Directory.EnumerateFiles(Path.Combine(crashed, "vehicle-files", "failed")).ShouldBeEmpty();
        const string Summary = "SELECT * FROM reports.daily_summary ORDER BY day, vehicle_id";
        (await Query(crashed, Summary)).ShouldBe(await Query(clean, Summary));
    }

    [Theory]
    [InlineData("landing.written", 3)]
    [InlineData("landing.fsynced", 3)]
    [InlineData("sink.written", 2)]
    [InlineData("sink.checkpointed", 2)]
    public async Task Tenant_analytics_killed_at_a_commit_point_loses_no_acknowledged_event_and_lands_none_twice(string point, int time)
    {
        using var engine = new Engine();
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("cp", TokenRole.Writer, null).Token;
        var acked = new List<string>();
        var sent = 0;
        using (var run = SluiceProcess.Start(engine.DataRoot, CrashAt($"{point}:{time}"), "run", "tenant-analytics", "--port", "0"))
        {
            using var client = new HttpClient { BaseAddress = await TenantAnalyticsDiskFullTests.ServingAtAsync(run), Timeout = TimeSpan.FromSeconds(30) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            for (var batch = 0; batch < 60 && !run.HasExited; batch++)
            {
                var ids = Enumerable.Range(0, 200).Select(i => $"cp-{batch}-{i}").ToList();
                sent += ids.Count;
                using var content = new ByteArrayContent(new EcommerceEvents(new Random(batch)).Batch("cp", ids, new DateTime(2025, 11, 8, 9, 0, 0, DateTimeKind.Utc)));
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                try
                {
                    using var response = await client.PostAsync("/v1/streams/ecommerce/events", content);
                    if (response.StatusCode == HttpStatusCode.Accepted) { acked.AddRange(ids); }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    // The process died with this request in flight: never acknowledged.
                }

                // Gives the pipeline a moment to take the batch, so the sink points are reached while requests still come.
                await Task.Delay(50);
            }

            (await run.WaitAsync(TimeSpan.FromSeconds(60))).ShouldNotBe(0, run.Stderr);
            run.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {point}");
        }

        var restart = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        restart.Code.ShouldBe(0, restart.Err);
        var landed = engine.Services.Query.Query("SELECT event_id FROM analytics.events").Rows.Select(r => (string)r[0]!).ToList();
        ChaosFigures.Record($"{nameof(Tenant_analytics_killed_at_a_commit_point_loses_no_acknowledged_event_and_lands_none_twice)}({point})", "tenant-analytics", $"SIGKILL at {point} (time {time})",
            sent, acked.Count, landed.Count, landed.Count - landed.Distinct().Count(), acked.Except(landed).Count(), "landed may exceed acknowledged: events fsynced whose answer the kill cut off");
        acked.Count.ShouldBeGreaterThan(0, "some events must be acknowledged before the kill, or the test proves nothing");
        landed.Count.ShouldBe(landed.Distinct().Count(), "no event landed twice");
        acked.Except(landed).ShouldBeEmpty("every acknowledged event is in the lake");
    }

    [Theory]
    [InlineData("reminder.claimed", 1, 0)]
    [InlineData("reminder.sent", 3, 1)]
    public async Task Reminders_killed_at_a_commit_point_go_out_at_most_once_and_only_an_unrecorded_send_is_left_unconfirmed(string point, int time, int unconfirmed)
    {
        const int Cases = 8;
        using var h = new ReminderHarness();
        var cases = Enumerable.Range(0, Cases).Select(i => string.Create(CultureInfo.InvariantCulture, $"cp{i}")).ToList();
        await h.LandAsync("mongo", cases.Select(c => h.Mongo(c, T0, attorney: c)).ToArray());
        await h.LandAsync("salesforce", cases.Select(c => h.Salesforce(c, T0.AddDays(1), attorney: c)).ToArray());
        var now = Iso(T0 + TimeSpan.FromDays(30) + TimeSpan.FromHours(1));
        var smtp = new Dictionary<string, string> { ["SMTP_HOST"] = ServerSettings.SmtpHost, ["SMTP_PORT"] = ServerSettings.SmtpPort.ToString(CultureInfo.InvariantCulture), ["SMTP_TLS"] = "none" };

        await ShouldDieAtAsync(h.Engine.DataRoot, $"{point}:{time}", [.. smtp], "job", "run", "repeat-reminder/send-reminders", "--now", now);
        var beforeRestart = h.Mails().Count;
        var restart = SluiceProcess.Start(h.Engine.DataRoot, smtp, "job", "run", "repeat-reminder/send-reminders", "--now", now);
        using (restart) { (await restart.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, restart.Stderr); }

        var perCase = cases.ToDictionary(c => c, c => h.Mails(c).Count, StringComparer.Ordinal);
        var counts = h.Outbox().Counts();
        ChaosFigures.Record($"{nameof(Reminders_killed_at_a_commit_point_go_out_at_most_once_and_only_an_unrecorded_send_is_left_unconfirmed)}({point})", "repeat-reminder", $"SIGKILL at {point} (time {time})",
            Cases, counts.GetValueOrDefault(ReminderOutbox.Sent), perCase.Values.Sum(), perCase.Values.Count(n => n > 1), perCase.Values.Count(n => n == 0),
            $"{beforeRestart} mails before the kill; outbox after the restart: {counts.GetValueOrDefault(ReminderOutbox.Sent)} sent, {counts.GetValueOrDefault(ReminderOutbox.Unconfirmed)} unconfirmed");
        perCase.Values.ShouldAllBe(n => n == 1, "every reminder went out, none twice");
        counts.GetValueOrDefault(ReminderOutbox.Unconfirmed).ShouldBe(unconfirmed);
        counts.GetValueOrDefault(ReminderOutbox.Sent).ShouldBe(Cases - unconfirmed);
    }

    [Theory]
    [InlineData("sink.written", 4)]
    [InlineData("sink.checkpointed", 4)]
    public async Task Engagement_cdc_killed_at_a_commit_point_and_restarted_leaves_every_sink_exact(string point, int time)
    {
        await using var scenario = await CdcScenario.CreateAsync();
        await scenario.InsertAsync(300, rowsPerStatement: 20, seed: 120);
        var env = scenario.ProcessEnvironment;
        env["SLUICE_CRASH_AT"] = $"{point}:{time}";
        using (var first = SluiceProcess.Start(scenario.DataRoot, env, "run", "engagement-cdc"))
        {
            for (var i = 0; i < 60 && !first.HasExited; i++) { await scenario.InsertAsync(20, rowsPerStatement: 4, seed: 400 + i); }
            (await first.WaitAsync(TimeSpan.FromSeconds(90))).ShouldNotBe(0, first.Stderr);
            first.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {point}");
        }

        await scenario.InsertAsync(100, seed: 121);
        using var second = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        await scenario.WaitForAllSinksAsync(TimeSpan.FromSeconds(120));
        await CdcServerRestartTests.RecordAsync(scenario, $"{nameof(Engagement_cdc_killed_at_a_commit_point_and_restarted_leaves_every_sink_exact)}({point})", $"SIGKILL at {point} (time {time})",
            "acknowledged = rows committed at the source");
        await scenario.AssertExactAsync();
        (await second.StopAsync()).ShouldBe(0, second.Stderr);
    }

    private static Dictionary<string, string> CrashAt(string point, params KeyValuePair<string, string>[] more)
    {
        var env = new Dictionary<string, string>(more, StringComparer.Ordinal) { ["SLUICE_CRASH_AT"] = point };
        return env;
    }

    private static Task ShouldDieAtAsync(string data, string point, params string[] args) => ShouldDieAtAsync(data, point, [], args);

    private static async Task ShouldDieAtAsync(string data, string point, KeyValuePair<string, string>[] env, params string[] args)
    {
        using var p = SluiceProcess.Start(data, CrashAt(point, env), args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        code.ShouldNotBe(0, $"the process was to die at {point}, but it finished.\n{p.Stderr}");
        p.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {point.Split(':')[0]}");
    }
}
