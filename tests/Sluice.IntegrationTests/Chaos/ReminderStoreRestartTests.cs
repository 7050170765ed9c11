using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Npgsql;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// repeat-reminder with its store in PostgreSQL (<c>store.yaml: postgres</c>) on a server of the test's own that is
/// SIGKILLed while pushed events are landing, and started again: ingest goes on acknowledging (the landing log keeps
/// what the store has not taken), and once the server is back every acknowledged event is in the store exactly once.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class ReminderStoreRestartTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_postgres_store_killed_mid_landing_and_restarted_holds_every_acknowledged_event_once()
    {
        await using var pg = new ThrowawayPostgres();
        await pg.StartAsync();
        const string Schema = "rr_chaos";
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal),
            store => store.Replace("lake:\n  zone: reminders", $"postgres:\n  schema: {Schema}", StringComparison.Ordinal), systemClock: true);
        var token = new TokenStore(h.Services.Metadata, h.Services.Time).Create(h.Client(), TokenRole.Writer, null, null).Token;
        var env = new Dictionary<string, string>
        {
            ["PGHOST"] = "127.0.0.1", ["PGPORT"] = pg.Port.ToString(CultureInfo.InvariantCulture), ["PGUSER"] = "sluice", ["PGDATABASE"] = "postgres",
        };
        var port = FreePort.Next();
        var accepted = 0;
        long atKill = 0;
        using var run = SluiceProcess.Start(h.Engine.DataRoot, env, "run", h.RecipeFolder, "--port", port.ToString(CultureInfo.InvariantCulture));
        await run.WaitForOutputAsync("Serving HTTP on", TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        const int Requests = 30;
        for (var request = 0; request < Requests; request++)
        {
            if (request == 10)
            {
                await WaitUntilAsync(pg, Schema, c => c >= 500, run);
                atKill = await TryCountAsync(pg, $"SELECT count(*) FROM {Schema}.source_event");
                await pg.KillAsync();
            }

            if (request == 20) { await pg.StartAsync(); }
            var body = string.Join("\n", Enumerable.Range(0, 100).Select(i => h.Mongo($"c{request}-{i}", T0, id: $"m-{request}-{i}")));
            using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/mongo/events") { Content = new StringContent(body, Encoding.UTF8) };
            message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await SendAsync(http, message, run);
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, "ingest does not depend on the store's server");
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            accepted += doc.RootElement.GetProperty("accepted").GetInt32();
        }

        await WaitUntilAsync(pg, Schema, c => c >= accepted, run);
        run.HasExited.ShouldBeFalse("a lost store server is transient: the run goes on");
        (await run.StopAsync()).ShouldBe(0, run.Stderr);

        var rows = await TryCountAsync(pg, $"SELECT count(*) FROM {Schema}.source_event");
        var distinct = await TryCountAsync(pg, $"SELECT count(DISTINCT position) FROM {Schema}.source_event");
        var events = await TryCountAsync(pg, $"SELECT count(*) FROM {Schema}.attorney_events");
        var distinctEvents = await TryCountAsync(pg, $"SELECT count(DISTINCT source_id) FROM {Schema}.attorney_events");
        ChaosFigures.Record(nameof(The_postgres_store_killed_mid_landing_and_restarted_holds_every_acknowledged_event_once), "repeat-reminder",
            "postgres (store) SIGKILL mid-landing, restarted", Requests * 100, accepted, rows, rows - distinct, accepted - distinct,
            $"{atKill} events in the store at the kill; 10 requests acknowledged while it was down; attorney_events {events} rows, {distinctEvents} distinct");
        accepted.ShouldBe(Requests * 100);
        rows.ShouldBe(accepted);
        distinct.ShouldBe(accepted);
        events.ShouldBe(accepted);
        distinctEvents.ShouldBe(accepted);
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpRequestMessage message, SluiceProcess run)
    {
        try
        {
            return await http.SendAsync(message);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"the run does not answer (exited: {run.HasExited}): {e.Message}\nstderr:\n{run.Stderr}", e);
        }
    }

    private static async Task WaitUntilAsync(ThrowawayPostgres pg, string schema, Func<long, bool> done, SluiceProcess run)
    {
        var deadline = DateTime.UtcNow + Patience;
        long last;
        while (!done(last = await TryCountAsync(pg, $"SELECT count(*) FROM {schema}.source_event")))
        {
            if (run.HasExited || DateTime.UtcNow > deadline) { throw new TimeoutException($"the store holds {last} events (run exited: {run.HasExited})\nstderr:\n{run.Stderr}"); }
            await Task.Delay(100);
        }
    }

    private static async Task<long> TryCountAsync(ThrowawayPostgres pg, string sql)
    {
        try
        {
            await using var connection = new NpgsqlConnection(pg.ConnectionString() + ";Pooling=false");
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand(sql, connection);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            return -1;
        }
    }
}
