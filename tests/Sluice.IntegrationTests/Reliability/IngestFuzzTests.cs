using System.Globalization;
using Sluice.Hosting;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Serving.Auth;
using Xunit.Abstractions;
using static Sluice.IntegrationTests.Reliability.EventFuzzer;

namespace Sluice.IntegrationTests.Reliability;

/// <summary>
/// Thousands of hostile requests against the real servers of the two push recipes (seeded; set SLUICE_FUZZ_SEED to
/// replay one; bounded by a case count and a time budget): no answer is a 5xx, every good event of a 202 lands, and the
/// server still serves afterwards.
/// </summary>
public sealed class IngestFuzzTests(ITestOutputHelper output)
{
    private const int MaxCases = 4_000;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("SLUICE_FUZZ_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 20251108;

    [Fact]
    public async Task Ecommerce_events_with_hostile_values_in_every_field_never_get_a_5xx_and_the_good_ones_land()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("acme", TokenRole.Writer);
        var reader = server.Token("acme", TokenRole.Reader);
        var run = new IngestFuzzRun(server.Client, writer, Seed);

        await run.RunAsync([new IngestFuzzRun.Target("ecommerce", Ecommerce)], MaxCases, Budget);
        Report(run);

        // Mutated events that are valid spread over random days of years 1 to 9999: a lake file per day partition makes the
        // sink slow to catch up on a loaded machine, hence the generous deadline (it returns as soon as all landed).
        var landed = await server.WaitForCountAsync("SELECT count(DISTINCT event_id) FROM analytics.events WHERE event_id LIKE 'good-%'", run.AcceptedGood.Count, TimeSpan.FromSeconds(180));
        landed.ShouldBe(run.AcceptedGood.Count, $"seed {Seed}: every good event of a 202 lands");
        (await server.GetJsonAsync(null, "/healthz")).Status.ShouldBe(200, $"seed {Seed}");
        var (status, metrics) = await server.GetJsonAsync(reader, "/v1/metrics?from=2025-11-01&to=2025-11-29&group_by=day");
        status.ShouldBe(200, $"seed {Seed}");
        metrics.GetProperty("rows").EnumerateArray().Sum(r => r.GetProperty("events").GetInt64()).ShouldBeGreaterThanOrEqualTo(run.AcceptedGood.Count);
        (await server.GetJsonAsync(reader, "/v1/metrics?from=0001-01-02&to=0002-01-01&group_by=hour")).Status.ShouldBe(200, $"seed {Seed}: early dates");
    }

    [Fact]
    public async Task Reminder_events_with_hostile_values_in_every_field_never_get_a_5xx_and_the_good_ones_are_mapped()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal), systemClock: true);
        var host = new RecipeHost(h.Recipe, h.Services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0) };
        await using var _ = host;
        using var stop = new CancellationTokenSource();
        var running = host.RunAsync(stop.Token);
        var address = await host.HttpStarted.WaitAsync(TimeSpan.FromSeconds(90));
        using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        var tokens = new TokenStore(h.Services.Metadata, h.Services.Time);
        var client = h.Client();
        var writer = tokens.Create(client, TokenRole.Writer, null, null).Token;
        var reader = tokens.Create(client, TokenRole.Reader, null, null).Token;
        var run = new IngestFuzzRun(http, writer, Seed);

        await run.RunAsync(
        [
            new IngestFuzzRun.Target("salesforce", (f, id) => Salesforce(f, id, client)),
            new IngestFuzzRun.Target("mongo", (f, id) => Mongo(f, id, client)),
        ], MaxCases, Budget);
        Report(run);

        var deadline = DateTime.UtcNow.AddSeconds(180);
        long mapped = -1;
        while (DateTime.UtcNow < deadline && mapped != run.AcceptedGood.Count)
        {
            mapped = Count(h, "SELECT count(DISTINCT source_id) FROM reminders.attorney_events WHERE source_id LIKE 'good-%'");
            if (mapped != run.AcceptedGood.Count) { await Task.Delay(100); }
        }

        mapped.ShouldBe(run.AcceptedGood.Count, $"seed {Seed}: every good event of a 202 is mapped");
        using (var health = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
        {
            ((int)health.StatusCode).ShouldBe(200, $"seed {Seed}");
        }

        using var query = new HttpRequestMessage(HttpMethod.Get, "/v1/reminders");
        query.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", reader);
        using var reminders = await http.SendAsync(query);
        ((int)reminders.StatusCode).ShouldBe(200, $"seed {Seed}");
        await stop.CancelAsync();
        await running;
    }

    private void Report(IngestFuzzRun run) =>
        output.WriteLine($"seed {Seed}: {run.Cases} cases in {run.Requests} requests in {run.Elapsed.TotalSeconds:0.0} s, {run.AcceptedGood.Count} good events accepted, {run.Rejected} rejected; statuses {string.Join(", ", run.Statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}");

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

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Ts(EventFuzzer f, int year, int month) =>
        Text(new DateTime(year, month, f.Random.Next(1, 28), f.Random.Next(24), f.Random.Next(60), f.Random.Next(60), DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));

    /// <summary>A valid e-commerce event (either version, any type, with or without items) of November 2025.</summary>
    private static List<FuzzMember> Ecommerce(EventFuzzer f, string id)
    {
        var version = f.Random.Next(1, 3);
        var type = f.Pick(["page_view", "add_to_cart", "purchase", "refund"]);
        var members = new List<FuzzMember>
        {
            new("event_id", Text(id)),
            new("schema_version", version.ToString(CultureInfo.InvariantCulture)),
            new("event_type", Text(type)),
            new("event_ts", Ts(f, 2025, 11)),
            new("customer", new List<FuzzMember> { new("id", Text("c" + f.Random.Next(50))), new("email", Text($"u{f.Random.Next(50)}@example.com")), new("country", Text(f.Pick(["DE", "FR", "日本"]))) }),
        };
        if (type is "purchase" or "refund" || f.Random.Next(3) == 0)
        {
            members.Add(new("order", new List<FuzzMember> { new("id", Text("o" + f.Random.Next(1000))), new("total", Number(Math.Round(f.Random.NextDouble() * 500, 2))), new("currency", Text("EUR")) }));
        }

        if (f.Random.Next(2) == 0)
        {
            members.Add(new("items", Enumerable.Range(0, f.Random.Next(0, 4)).Select(_ => new List<FuzzMember>
            {
                new("sku", Text("SKU-" + f.Random.Next(100))), new("qty", f.Random.Next(1, 5).ToString(CultureInfo.InvariantCulture)), new("price", Number(Math.Round(f.Random.NextDouble() * 100, 2))),
            }).ToList()));
        }

        members.Add(new("ml_context", new List<FuzzMember> { new("model_scores", new List<FuzzMember> { new("fraud", Number(f.Random.NextDouble())), new("churn", Number(f.Random.NextDouble())) }) }));
        members.Add(new("processing_flags", new List<FuzzMember> { new("pii_contains", f.Random.Next(2) == 0 ? "true" : "false") }));
        if (version == 2)
        {
            members.Add(new("session", new List<FuzzMember> { new("id", Text("s" + f.Random.Next(100))), new("device", Text(f.Pick(["ios", "web"]))) }));
        }

        return members;
    }

    private static List<FuzzMember> Salesforce(EventFuzzer f, string id, string client) =>
    [
        new("source", Text("salesforce")),
        new("salesforce_object_id", Text(id)),
        new("event_type", Text("attorney actions")),
        new("timestamp", Ts(f, 2025, 7)),
        new("case_id", Text("CASE-" + f.Random.Next(100))),
        new("client_id", Text(client)),
        new("attorney_email", Text($"a{f.Random.Next(10)}@example.test")),
        new("attributes", new List<FuzzMember>
        {
            new("status", Text(f.Pick(["Likely to Repeat", "Unlikely"]))), new("confidence_score", Number(Math.Round(f.Random.NextDouble(), 3))),
            new("case_type", Text("Immigration")), new("Case_last_action", Text("call")),
        }),
    ];

    private static List<FuzzMember> Mongo(EventFuzzer f, string id, string client) =>
    [
        new("source", Text("Mongo")),
        new("_id", Text(id)),
        new("type", Text(f.Pick(["service_closure", "additional_purchase"]))),
        new("event_timestamp", Ts(f, 2025, 7)),
        new("case_id", Text("CASE-" + f.Random.Next(100))),
        new("client_id", Text(client)),
        new("attorney_email", Text($"a{f.Random.Next(10)}@example.test")),
        new("status", Text("closed")),
        new("confidence_score", f.Random.Next(2) == 0 ? Number(0.5) : Text("0.5")),
        new("case_type", Text("Immigration")),
        new("case_last_action", Text("closed the file")),
    ];
}
