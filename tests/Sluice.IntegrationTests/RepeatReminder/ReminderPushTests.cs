using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.Hosting;
using Sluice.Serving.Auth;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The push path: the streams salesforce and mongo on the HTTP ingest endpoint, mapped, stored and turned into a reminder.</summary>
public sealed class ReminderPushTests
{
    [Fact]
    public async Task Pushed_events_are_deduplicated_scoped_to_the_tokens_client_mapped_and_reminded_once()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal), systemClock: true);
        var host = new RecipeHost(h.Recipe, h.Services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0) };
        await using var _ = host;
        using var stop = new CancellationTokenSource();
        var running = host.RunAsync(stop.Token);
        var address = await host.HttpStarted.WaitAsync(TimeSpan.FromSeconds(90));
        using var http = new HttpClient { BaseAddress = address };
        var tokens = new TokenStore(h.Services.Metadata, h.Services.Time);
        var token = tokens.Create(h.Client(), TokenRole.Writer, null, null).Token;
        var other = tokens.Create($"{h.Client()}-other", TokenRole.Writer, null, null).Token;

        var likely = h.Salesforce("A", T0.AddDays(1), id: "sf-1");
        var sf = await PostAsync(http, token, "salesforce", $"[{likely}, {likely}, {h.Salesforce("A", T0.AddDays(2), id: "sf-bad").Replace(Iso(T0.AddDays(2)), "soon", StringComparison.Ordinal)}]");
        sf.Status.ShouldBe(HttpStatusCode.Accepted, sf.Body);
        sf.Json.GetProperty("duplicates").GetInt32().ShouldBe(1);
        sf.Json.GetProperty("rejected")[0].GetProperty("field").GetString().ShouldBe("timestamp");
        (await PostAsync(http, token, "salesforce", likely)).Json.GetProperty("duplicates").GetInt32().ShouldBe(1, "a retry of the same salesforce_object_id lands once");
        var noEmail = h.Mongo("B", T0, id: "m-2").Replace($"\"attorney_email\": \"{h.Attorney("ann")}\", ", "", StringComparison.Ordinal);
        var mongo = await PostAsync(http, token, "mongo", $"{h.Mongo("A", T0, id: "m-1")}\n{h.Mongo("A", T0, id: "m-1")}\n{noEmail}", "application/x-ndjson");
        mongo.Status.ShouldBe(HttpStatusCode.Accepted, mongo.Body);
        mongo.Json.GetProperty("duplicates").GetInt32().ShouldBe(1);

        var foreign = await PostAsync(http, other, "mongo", h.Mongo("C", T0, id: "m-3"));
        foreign.Status.ShouldBe(HttpStatusCode.Forbidden, "the event's client_id is not the token's client");
        foreign.Body.ShouldContain("client_id");

        await WaitAsync(() => Count(h, "SELECT count(*) FROM reminders.source_event") == 3);
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(2);
        var letter = h.Services.DeadLetters.List("events:repeat-reminder/mongo").Single();
        letter.Reason.ShouldBe("mongo: field 'attorney_email': missing required field 'attorney_email'");
        letter.Position.ShouldContain($"tenant {h.Client()}, landing offset");

        var outcome = await h.EvaluateAsync(T0 + TimeSpan.FromDays(30));
        outcome.RowsOut.ShouldBe(1, outcome.Message);
        var mail = h.Mails("ann").Single();
        mail.Subject!.ShouldContain(h.Case("A"));
        mail.Subject!.ShouldContain(h.Client());

        // Queries are scoped by the client too: a reader sees its own client's reminders, nobody else's.
        var reader = tokens.Create(h.Client(), TokenRole.Reader, null, null).Token;
        var mine = await GetAsync(http, reader, "/v1/reminders");
        mine.Status.ShouldBe(HttpStatusCode.OK, mine.Body);
        var reminder = mine.Json.GetProperty("reminders").EnumerateArray().Single();
        reminder.GetProperty("case_id").GetString().ShouldBe(h.Case("A"));
        reminder.GetProperty("status").GetString().ShouldBe("sent");
        reminder.GetProperty("due_at").GetString().ShouldBe(Iso(T0 + TimeSpan.FromDays(30)));
        mine.Body.ShouldNotContain(h.Attorney("ann"));
        var otherReader = tokens.Create($"{h.Client()}-other", TokenRole.Reader, null, null).Token;
        (await GetAsync(http, otherReader, "/v1/reminders")).Json.GetProperty("reminders").GetArrayLength().ShouldBe(0);
        (await GetAsync(http, otherReader, $"/v1/reminders?tenant={h.Client()}")).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await GetAsync(http, token, "/v1/reminders")).Status.ShouldBe(HttpStatusCode.Forbidden, "a writer cannot query");
        var admin = tokens.Create("ops", TokenRole.Admin, null, null).Token;
        (await GetAsync(http, admin, $"/v1/reminders?tenant={h.Client()}")).Json.GetProperty("reminders").GetArrayLength().ShouldBe(1);

        await stop.CancelAsync();
        await running;
    }

    private static async Task<(HttpStatusCode Status, string Body, JsonElement Json)> PostAsync(HttpClient http, string token, string stream, string body, string type = "application/json")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/streams/{stream}/events") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text, text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    private static async Task<(HttpStatusCode Status, string Body, JsonElement Json)> GetAsync(HttpClient http, string token, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text, text.Length > 0 && text[0] == '{' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    private static long Count(ReminderHarness h, string sql)
    {
        try
        {
            return h.Engine.Count(sql);
        }
        catch (Core.SluiceException)
        {
            return -1;
        }
    }

    private static async Task WaitAsync(Func<bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException("the pipeline did not land the events within 30 s"); }
            await Task.Delay(50);
        }
    }
}
