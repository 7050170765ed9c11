using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;
using Sluice.Serving.Auth;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// repeat-reminder with its lake store on a full disk (a 4 MiB tmpfs on <c>lake/</c> filled but for 16 KiB), first while
/// pushed events land, then while the send-reminders job records what it sent: ingest goes on (the landing log is on
/// another disk), the store waits with <c>/healthz</c> failing and the reason, and lands every acknowledged event once
/// when space is freed; the job that cannot record its outcomes fails in one line, and the next run records them
/// without mailing anyone twice.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class ReminderDiskFullTests
{
    private const int Requests = 8;
    private const int PerRequest = 100;
    private const int Due = 20;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_full_reminder_store_disk_holds_events_and_outcomes_back_says_so_and_lands_each_once_after_space_is_freed()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal), systemClock: true);
        var token = new TokenStore(h.Services.Metadata, h.Services.Time).Create(h.Client(), TokenRole.Writer, null, null).Token;
        using var disk = Tmpfs.Mount(Path.Combine(h.Engine.DataRoot, "lake"), megabytes: 4);
        var accepted = 0;
        long landedWhileFull;
        string health;
        using (var run = SluiceProcess.Start(h.Engine.DataRoot, "run", h.RecipeFolder, "--port", "0"))
        {
            using var http = new HttpClient { BaseAddress = await TenantAnalyticsDiskFullTests.ServingAtAsync(run), Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            for (var request = 0; request < Requests; request++)
            {
                if (request == 1)
                {
                    // The first request landed with space; the rest meet the full disk.
                    await VehicleFilesDiskFullTests.WaitUntilAsync(() => Landed(h) >= PerRequest, Patience, () => $"landed {Landed(h)}\n{run.Stderr}");
                    disk.Fill(leftKiB: 16);
                }

                // Closures of cases c{request}-{i}; the first Due cases of the last request also get a likely-to-repeat verdict.
                var body = string.Join("\n", Enumerable.Range(0, PerRequest).Select(i => h.Mongo(CaseName(request, i), T0, id: $"m-{request}-{i}", attorney: CaseName(request, i))));
                accepted += await PostAsync(http, "mongo", body);
            }

            accepted += await PostAsync(http, "salesforce", string.Join("\n", Enumerable.Range(0, Due).Select(i =>
                h.Salesforce(CaseName(Requests - 1, i), T0.AddDays(1), id: $"sf-{i}", attorney: CaseName(Requests - 1, i)))));

            await run.WaitForOutputAsync("no space left on device", Patience);
            using (var response = await http.GetAsync("/healthz"))
            {
                health = await response.Content.ReadAsStringAsync();
                response.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, $"a store that cannot be written is not healthy: {health}");
            }

            landedWhileFull = Landed(h);
            disk.Free();
            await VehicleFilesDiskFullTests.WaitUntilAsync(() => Landed(h) >= accepted, Patience, () => $"landed {Landed(h)} of {accepted}\n{run.Stderr}");
            // The rows counted above are visible as soon as the sink's lake commit is; the sink clears its reason only
            // after that, once its checkpoint is written in meta.db (an fsync, slow on a loaded machine): health is
            // waited for, not read at the instant the last row appears.
            var (code, healthAfter) = await HealthAsync(http);
            for (var deadline = DateTime.UtcNow + Patience; code != HttpStatusCode.OK && DateTime.UtcNow < deadline; (code, healthAfter) = await HealthAsync(http))
            {
                await Task.Delay(100);
            }

            code.ShouldBe(HttpStatusCode.OK, $"healthy again once the store lands, without a restart: {healthAfter}");

            (await run.StopAsync()).ShouldBe(0, run.Stderr);
            run.Stderr.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
        }

        // The job: mails go out (the outbox is in meta.db, on another disk), recording the outcomes in the lake cannot.
        var smtp = new Dictionary<string, string> { ["SMTP_HOST"] = ServerSettings.SmtpHost, ["SMTP_PORT"] = ServerSettings.SmtpPort.ToString(CultureInfo.InvariantCulture), ["SMTP_TLS"] = "none" };
        var now = Iso(T0 + TimeSpan.FromDays(30) + TimeSpan.FromHours(1));
        disk.Fill(leftKiB: 0);
        var full = await RunJobAsync(h, smtp, now);
        var mailsWhileFull = h.Mails().Count;
        disk.Free();
        var again = await RunJobAsync(h, smtp, now);
        var afterwards = await RunJobAsync(h, smtp, now);

        var sourceIds = h.Engine.Services.Query.Query("SELECT source_id FROM reminders.attorney_events").Rows.Select(r => (string)r[0]!).ToList();
        var outcomes = h.Engine.Services.Query.Query("SELECT reminder_key, status FROM reminders.attorney_reminder").Rows.Select(r => ((string)r[0]!, (string)r[1]!)).ToList();
        var perCase = Enumerable.Range(0, Due).ToDictionary(i => CaseName(Requests - 1, i), i => h.Mails(CaseName(Requests - 1, i)).Count, StringComparer.Ordinal);
        ChaosFigures.Record(nameof(A_full_reminder_store_disk_holds_events_and_outcomes_back_says_so_and_lands_each_once_after_space_is_freed), "repeat-reminder",
            "disk full (lake/ on a 4 MiB tmpfs) while pushed events land, freed while running; full again during send-reminders, freed, job run again",
            accepted, accepted, sourceIds.Count, sourceIds.Count - sourceIds.Distinct(StringComparer.Ordinal).Count(), accepted - sourceIds.Distinct(StringComparer.Ordinal).Count(),
            $"{landedWhileFull} events landed while the store's disk was full; reminders: {Due} due, {mailsWhileFull} mailed by the run that could not record them, {perCase.Values.Sum()} mails in all, {outcomes.Count} outcome rows");

        health.ShouldContain("no space left on device");
        health.ShouldContain("reminder_store");
        landedWhileFull.ShouldBeLessThan(accepted, "the disk must be full before everything landed, or the test proves nothing");
        sourceIds.Count.ShouldBe(accepted);
        sourceIds.Distinct(StringComparer.Ordinal).Count().ShouldBe(accepted, "no event landed twice");
        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(accepted);

        full.Code.ShouldNotBe(0, full.Err);
        full.Err.ShouldContain("no space left on device");
        full.Err.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
        mailsWhileFull.ShouldBe(Due, "the mails went out before the outcomes could not be recorded");
        again.Code.ShouldBe(0, again.Err);
        again.Out.ShouldContain("0 sent");
        afterwards.Code.ShouldBe(0, afterwards.Err);
        perCase.Values.ShouldAllBe(n => n == 1, "every due reminder mailed exactly once");
        outcomes.Count.ShouldBe(Due, "each outcome recorded once");
        outcomes.Select(o => o.Item1).Distinct(StringComparer.Ordinal).Count().ShouldBe(Due);
        outcomes.ShouldAllBe(o => o.Item2 == ReminderOutbox.Sent);
        h.Outbox().Counts().GetValueOrDefault(ReminderOutbox.Sent).ShouldBe(Due);
    }

    private static string CaseName(int request, int i) => string.Create(CultureInfo.InvariantCulture, $"c{request}-{i}");

    private static async Task<(HttpStatusCode Code, string Body)> HealthAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/healthz");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<int> PostAsync(HttpClient http, string stream, string ndjson)
    {
        using var content = new StringContent(ndjson, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        using var response = await http.PostAsync($"/v1/streams/{stream}/events", content);
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, $"the landing log is on another disk: ingest goes on. {body}");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("accepted").GetInt32();
    }

    private static async Task<(int Code, string Out, string Err)> RunJobAsync(ReminderHarness h, Dictionary<string, string> smtp, string now)
    {
        using var job = SluiceProcess.Start(h.Engine.DataRoot, smtp, "job", "run", "repeat-reminder/send-reminders", "--now", now);
        var code = await job.WaitAsync(Patience);
        return (code, job.Stdout, job.Stderr);
    }

    private static long Landed(ReminderHarness h)
    {
        try
        {
            return h.Engine.Count("SELECT count(*) FROM reminders.source_event");
        }
        catch (Core.SluiceException)
        {
            return 0;
        }
    }
}
