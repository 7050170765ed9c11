using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>SIGKILL while pushed events are being mapped and stored, then a restart: every acknowledged event lands once.</summary>
public sealed class ReminderPushCrashTests
{
    [Fact]
    public async Task Killed_while_landing_pushed_events_restart_lands_every_acknowledged_event_once()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal), systemClock: true);
        var token = new TokenStore(h.Services.Metadata, h.Services.Time).Create(h.Client(), TokenRole.Writer, null, null).Token;
        var acknowledged = new List<string>();

        // The process kills itself after a store write and before that write's checkpoint: mid-work by construction,
        // however fast or slow the machine, and the restart must write that batch again without doubling it. The first
        // two writes are the empty "caught up" batches both pushed streams write at start; the first request holds one
        // event, so it makes at most one more write, and the fourth needs the second request, sent only once the first
        // was answered: at least one request is acknowledged before the kill.
        var crash = new Dictionary<string, string>(StringComparer.Ordinal) { [Core.CrashPoint.Variable] = "sink.written:4" };
        using (var run = SluiceProcess.Start(h.Engine.DataRoot, crash, "run", h.RecipeFolder, "--port", "0"))
        {
            using var http = new HttpClient { BaseAddress = await TenantAnalyticsDiskFullTests.ServingAtAsync(run) };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            for (var request = 0; !run.HasExited && DateTime.UtcNow < deadline; request++)
            {
                var ids = Enumerable.Range(0, request == 0 ? 1 : 100).Select(i => string.Create(CultureInfo.InvariantCulture, $"m-{request}-{i}")).ToList();
                var body = string.Join("\n", ids.Select((id, i) => h.Mongo(string.Create(CultureInfo.InvariantCulture, $"c{request}-{i}"), T0, id: id)));
                using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/mongo/events") { Content = new StringContent(body, Encoding.UTF8) };
                message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
                message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                try
                {
                    using var response = await http.SendAsync(message);
                    response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
                    using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                    doc.RootElement.GetProperty("accepted").GetInt32().ShouldBe(ids.Count);
                    acknowledged.AddRange(ids);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    // The process died with this request in flight: never acknowledged.
                }
            }

            (await run.WaitAsync(TimeSpan.FromSeconds(60))).ShouldNotBe(0, run.Stderr);
            run.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at sink.written");
        }

        acknowledged.ShouldNotBeEmpty("the first request is answered before the kill, or the test proves nothing");
        var restart = await SluiceProcess.RunAsync(h.Engine.DataRoot, "run", h.RecipeFolder, "--once");
        restart.Code.ShouldBe(0, restart.Err);

        // Landed may exceed acknowledged: events stored whose answer the kill cut off.
        var landed = h.Engine.Services.Query.Query("SELECT source_id FROM reminders.attorney_events").Rows.Select(r => (string)r[0]!).ToList();
        landed.Count.ShouldBe(landed.Distinct(StringComparer.Ordinal).Count(), "no event landed twice");
        acknowledged.Except(landed, StringComparer.Ordinal).ShouldBeEmpty("every acknowledged event landed");
        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(landed.Count);
        h.Engine.Count("SELECT count(DISTINCT position) FROM reminders.source_event").ShouldBe(landed.Count);
    }
}
