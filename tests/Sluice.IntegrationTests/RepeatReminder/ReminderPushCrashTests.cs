using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
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
        var port = FreePort.Next();
        var accepted = 0;
        long landedAtKill;
        using (var run = SluiceProcess.Start(h.Engine.DataRoot, "run", h.RecipeFolder, "--port", port.ToString(CultureInfo.InvariantCulture)))
        {
            await run.WaitForOutputAsync("Serving HTTP on", TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            for (var request = 0; request < 30; request++)
            {
                var body = string.Join("\n", Enumerable.Range(0, 100).Select(i => h.Mongo($"c{request}-{i}", T0, id: $"m-{request}-{i}")));
                using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/mongo/events") { Content = new StringContent(body, Encoding.UTF8) };
                message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
                message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(message);
                response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
                using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                accepted += doc.RootElement.GetProperty("accepted").GetInt32();
            }

            run.Kill();
            landedAtKill = Landed(h);
        }

        landedAtKill.ShouldBeLessThan(accepted, "the kill must come before the pipeline landed everything, or the test proves nothing");
        var restart = await SluiceProcess.RunAsync(h.Engine.DataRoot, "run", h.RecipeFolder, "--once");
        restart.Code.ShouldBe(0, restart.Err);

        accepted.ShouldBe(3000);
        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(3000);
        h.Engine.Count("SELECT count(DISTINCT position) FROM reminders.source_event").ShouldBe(3000);
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(3000);
        h.Engine.Count("SELECT count(DISTINCT source_id) FROM reminders.attorney_events").ShouldBe(3000);
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
