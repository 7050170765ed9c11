using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// tenant-analytics on a full disk (a 4 MiB tmpfs filled but for a little): with the landing log's folder full,
/// ingest refuses with 507 and its reason, never 500, and nothing acknowledged is lost; with the lake's folder full,
/// ingest goes on (the landing log keeps the events) and the lake sink lands everything once space is freed.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class TenantAnalyticsDiskFullTests
{
    private const int BatchEvents = 200;

    [Fact]
    public async Task A_full_landing_log_disk_answers_507_with_the_reason_and_every_acknowledged_event_lands_once_after_a_restart()
    {
        using var engine = new Engine();
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("full", TokenRole.Writer, null).Token;
        using var disk = Tmpfs.Mount(Path.Combine(engine.DataRoot, "landing"), megabytes: 4);
        disk.Fill(leftKiB: 600);
        var acked = new HashSet<string>(StringComparer.Ordinal);
        var refused = new List<List<string>>();
        var statuses = new List<(HttpStatusCode Status, string Body)>();
        using (var first = SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0"))
        {
            using var client = Client(await ServingAtAsync(first), token);
            for (var batch = 0; batch < 40 && refused.Count < 3; batch++)
            {
                var ids = Ids(batch);
                var (status, body) = await PostAsync(client, ids);
                if (status == HttpStatusCode.Accepted) { acked.UnionWith(ids); }
                else
                {
                    refused.Add(ids);
                    statuses.Add((status, body));
                }
            }

            using (var health = await client.GetAsync("/healthz"))
            {
                health.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, "a landing log that cannot be written is not healthy");
            }

            disk.Free();
            await first.StopAsync();
            first.Stderr.ShouldContain("no space left on device");
            first.Stderr.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
        }

        // Restarted with space again: the refused batches are sent again (a client's retry), and so are the acknowledged
        // ones, which must count as duplicates and land nothing twice.
        var sent = acked.Count + refused.Sum(r => r.Count);
        long duplicates = 0;
        using (var second = SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0"))
        {
            using var client = Client(await ServingAtAsync(second), token);
            foreach (var ids in refused.Append(acked.Order(StringComparer.Ordinal).ToList()))
            {
                var (status, body) = await PostAsync(client, ids);
                status.ShouldBe(HttpStatusCode.Accepted, body);
                duplicates += System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("duplicates").GetInt32();
            }

            await VehicleFilesDiskFullTests.WaitUntilAsync(() => Landed(engine) >= sent, TimeSpan.FromSeconds(60), () => $"landed {Landed(engine)} of {sent}\n{second.Stderr}");
            (await second.StopAsync()).ShouldBe(0, second.Stderr);
        }

        var landed = engine.Services.Query.Query("SELECT event_id FROM analytics.events").Rows.Select(r => (string)r[0]!).ToList();
        var firstAcked = acked.Count;
        ChaosFigures.Record(nameof(A_full_landing_log_disk_answers_507_with_the_reason_and_every_acknowledged_event_lands_once_after_a_restart), "tenant-analytics",
            "disk full (landing/ on a 4 MiB tmpfs), then restart and client retries", sent, firstAcked, landed.Count, landed.Count - landed.Distinct().Count(), acked.Except(landed).Count(),
            $"{refused.Count} requests refused with {string.Join("/", statuses.Select(s => (int)s.Status).Distinct())}; after the restart the refused events were sent again and landed, the {firstAcked} acknowledged ones came back as {duplicates} duplicates");

        firstAcked.ShouldBeGreaterThan(0, "some events must land before the disk fills, or the test proves less");
        refused.Count.ShouldBeGreaterThan(0, "the disk must fill, or the test proves nothing");
        foreach (var (status, body) in statuses)
        {
            status.ShouldBe(HttpStatusCode.InsufficientStorage, body);
            body.ShouldContain("no space left on device");
            body.ShouldNotContain("   at ", Case.Sensitive);
        }

        duplicates.ShouldBe(firstAcked, "a retry of an acknowledged event is a duplicate");
        landed.Count.ShouldBe(landed.Distinct().Count(), "no event landed twice");
        landed.Count.ShouldBe(sent);
        acked.Except(landed).ShouldBeEmpty("every acknowledged event is in the lake");
    }

    [Fact]
    public async Task A_full_lake_disk_holds_events_in_the_landing_log_and_they_land_once_space_is_freed_without_a_restart()
    {
        using var engine = new Engine();
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("lakefull", TokenRole.Writer, null).Token;
        using var disk = Tmpfs.Mount(Path.Combine(engine.DataRoot, "lake"), megabytes: 4);
        disk.Fill(leftKiB: 16);
        var acked = new HashSet<string>(StringComparer.Ordinal);
        const int Batches = 10;
        using var run = SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0");
        using (var client = Client(await ServingAtAsync(run), token))
        {
            for (var batch = 0; batch < Batches; batch++)
            {
                var ids = Ids(batch, "lakefull");
                var (status, body) = await PostAsync(client, ids, "lakefull");
                status.ShouldBe(HttpStatusCode.Accepted, $"the landing log is on another disk: ingest goes on. {body}");
                acked.UnionWith(ids);
            }
        }

        await run.WaitForOutputAsync("no space left on device", TimeSpan.FromSeconds(60));
        var landedWhileFull = Landed(engine);
        disk.Free();
        await VehicleFilesDiskFullTests.WaitUntilAsync(() => Landed(engine) >= acked.Count, TimeSpan.FromSeconds(60), () => $"landed {Landed(engine)} of {acked.Count}\n{run.Stderr}");
        run.Interrupt();
        var code = await run.WaitAsync(TimeSpan.FromSeconds(60));

        var landed = engine.Services.Query.Query("SELECT event_id FROM analytics.events").Rows.Select(r => (string)r[0]!).ToList();
        ChaosFigures.Record(nameof(A_full_lake_disk_holds_events_in_the_landing_log_and_they_land_once_space_is_freed_without_a_restart), "tenant-analytics",
            "disk full (lake/ on a 4 MiB tmpfs), freed while running", acked.Count, acked.Count, landed.Count, landed.Count - landed.Distinct().Count(), acked.Except(landed).Count(),
            $"{landedWhileFull} landed while the lake's disk was full");

        code.ShouldBe(0, run.Stderr);
        run.Stderr.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
        landedWhileFull.ShouldBeLessThan(acked.Count, "the disk must be full before everything landed, or the test proves nothing");
        landed.Count.ShouldBe(landed.Distinct().Count(), "no event landed twice");
        acked.Except(landed).ShouldBeEmpty("every acknowledged event is in the lake");
        engine.Count("SELECT count(*) FROM analytics.event_items").ShouldBe(engine.Count("SELECT count(*) FROM (SELECT DISTINCT event_id, _index FROM analytics.event_items)"));
    }

    private static List<string> Ids(int batch, string prefix = "full") => Enumerable.Range(0, BatchEvents).Select(i => $"{prefix}-b{batch}-{i}").ToList();

    private static long Landed(Engine engine)
    {
        try
        {
            return engine.Count("SELECT count(*) FROM analytics.events");
        }
        catch (Core.SluiceException)
        {
            return 0;
        }
    }

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(HttpClient client, List<string> ids, string tenant = "full")
    {
        using var content = new ByteArrayContent(new EcommerceEvents(new Random(ids[0].GetHashCode(StringComparison.Ordinal))).Batch(tenant, ids, new DateTime(2025, 11, 8, 12, 0, 0, DateTimeKind.Utc)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await client.PostAsync("/v1/streams/ecommerce/events", content);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The address a process started with <c>--port 0</c> serves on (no race for a free port with other tests).</summary>
    internal static async Task<Uri> ServingAtAsync(SluiceProcess process)
    {
        await process.WaitForOutputAsync("Serving HTTP on", TimeSpan.FromSeconds(60));
        var match = System.Text.RegularExpressions.Regex.Match(process.Stderr + process.Stdout, @"Serving HTTP on (http://\S+)");
        return new Uri(match.Groups[1].Value);
    }

    private static HttpClient Client(Uri address, string token)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
