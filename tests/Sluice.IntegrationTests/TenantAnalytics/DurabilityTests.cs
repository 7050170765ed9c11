using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class DurabilityTests
{
    /// <summary>Events acknowledged before the kill: a batch per sender, while all four are still sending.</summary>
    private const int KillAfterAcknowledged = 800;

    [Fact]
    public async Task Sigkill_during_sustained_ingest_loses_no_acknowledged_event_and_duplicates_none()
    {
        using var engine = new Engine();
        var token = new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("kill", TokenRole.Writer, null).Token;
        var acked = new ConcurrentBag<string>();
        using (var first = SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0"))
        {
            using var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(first), token);
            using var stop = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 4).Select(s => SendUntilStoppedAsync(client, s, acked, stop.Token)).ToList();

            // The kill waits for acknowledged events, not for a clock: a loaded machine acknowledges later, not fewer.
            await WaitUntilAcknowledgedAsync(first, acked, KillAfterAcknowledged, TimeSpan.FromSeconds(120));
            first.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        acked.Count.ShouldBeGreaterThanOrEqualTo(KillAfterAcknowledged);
        var (code, _, err) = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        code.ShouldBe(0, err);

        var landed = engine.Services.Query.Query("SELECT event_id FROM analytics.events").Rows.Select(r => (string)r[0]!).ToList();
        landed.Count.ShouldBe(landed.Distinct().Count(), "no event landed twice");
        acked.Except(landed).ShouldBeEmpty("every acknowledged event is in the lake");
        engine.Count("SELECT count(*) FROM analytics.event_items").ShouldBe(engine.Count("SELECT count(*) FROM (SELECT DISTINCT event_id, _index FROM analytics.event_items)"));

        // After the restart, client retries of acknowledged events are recognised as duplicates, and Ctrl-C stops cleanly.
        using var second = SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0");
        using (var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(second), token))
        {
            var retry = acked.Take(300).ToList();
            using var response = await client.PostAsync("/v1/streams/ecommerce/events", Body(retry));
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await TenantAnalyticsServer.JsonAsync(response)).GetProperty("duplicates").GetInt32().ShouldBe(300);
        }

        (await second.StopAsync()).ShouldBe(0, second.Stderr);
        (second.Stdout + second.Stderr).ShouldContain("stopped cleanly");
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(landed.Count);
    }

    [Fact]
    public async Task Dedup_keys_outlive_deleted_segments_and_restarts()
    {
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics", ("queue_bytes: 64MB", "queue_bytes: 1MB\n      segment_bytes: 64KB"), ("max_request_bytes: 32MB", "max_request_bytes: 1MB"));
        var ids = Enumerable.Range(0, 2000).Select(i => $"k{i}").ToList();
        await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
        {
            var writer = server.Token("dd", TokenRole.Writer);
            foreach (var chunk in ids.Chunk(200))
            {
                using var response = await server.PostAsync(writer, await Body(chunk, "dd").ReadAsByteArrayAsync());
                response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            }

            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 2000)).ShouldBe(2000);
            var source = server.Host.HttpComponents.OfType<HttpIngestSource>().Single();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (source.Log.Segments.Count > 2 && DateTime.UtcNow < deadline) { await Task.Delay(100); }
            source.Log.Segments.Count.ShouldBeLessThanOrEqualTo(2, "acknowledged segments are deleted");
        }

        Directory.GetFiles(Path.Combine(engine.DataRoot, "landing", "ecommerce", "dedup"), "*.keys").ShouldNotBeEmpty();
        await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
        {
            var writer = server.Token("dd", TokenRole.Writer);
            using var again = await server.PostAsync(writer, await Body(ids.Take(500).Append("fresh").ToList(), "dd").ReadAsByteArrayAsync());
            var json = await TenantAnalyticsServer.JsonAsync(again);
            json.GetProperty("accepted").GetInt32().ShouldBe(501);
            json.GetProperty("duplicates").GetInt32().ShouldBe(500);
            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 2001)).ShouldBe(2001);
        }

        // The same key from another tenant is not a duplicate: keys are per tenant.
        await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
        {
            using var other = await server.PostAsync(server.Token("ee", TokenRole.Writer), await Body(["k1"], "ee").ReadAsByteArrayAsync());
            (await TenantAnalyticsServer.JsonAsync(other)).GetProperty("duplicates").GetInt32().ShouldBe(0);
        }
    }

    [Fact]
    public async Task Landing_log_cuts_a_torn_tail_and_keeps_every_whole_record()
    {
        using var temp = new TempFolder();
        var folder = temp.Sub("log");
        long end;
        await using (var log = LandingLog.Open(folder, 1 << 20, 1 << 20, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
            for (var i = 0; i < 10; i++)
            {
                var json = Encoding.UTF8.GetBytes($"{{\"n\":{i}}}");
                end = log.Append(LandingRecord.Size(1, json.Length), span =>
                {
                    LandingRecord.Write(span, (ulong)i + 1, 1000, "t"u8, json);
                    return LandingRecord.Size(1, json.Length);
                });
                await log.WaitDurableAsync(end);
            }

            end = log.DurableEnd;
        }

        var segment = Directory.GetFiles(folder, "*.seg").Single();
        // A crash leaves no clean-stop marker (with it, the same bytes would be damage, not a torn tail).
        File.Delete(Path.Combine(folder, "clean-stop"));
        await using (var stream = new FileStream(segment, FileMode.Append))
        {
            // A record header promising more bytes than were written, as a crash mid-write leaves it.
            stream.Write([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
        }

        await using (var reopened = LandingLog.Open(folder, 1 << 20, 1 << 20, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
            reopened.DurableEnd.ShouldBe(end);
            new FileInfo(segment).Length.ShouldBe(end);
            var buffer = new byte[4096];
            var n = reopened.ReadAt(0, buffer);
            n.ShouldBe((int)end);
            var at = 0;
            var records = 0;
            while (at < n && LandingRecord.TryRead(buffer.AsSpan(at, n - at), out var size) == ReadStatus.Ok)
            {
                at += size;
                records++;
            }

            records.ShouldBe(10);
            Should.Throw<Core.SluiceException>(() => LandingLog.Open(folder, 1 << 20, 1 << 20, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)).Message.ShouldContain("in use");
        }
    }

    private static async Task WaitUntilAcknowledgedAsync(SluiceProcess server, ConcurrentBag<string> acked, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (acked.Count < count)
        {
            if (server.HasExited) { throw new InvalidOperationException($"sluice exited with {acked.Count} events acknowledged, before the kill.\n{server.Stderr}"); }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"only {acked.Count} of {count} events acknowledged within {timeout.TotalSeconds:0} s.\n{server.Stderr}"); }
            await Task.Delay(20);
        }
    }

    private static async Task SendUntilStoppedAsync(HttpClient client, int sender, ConcurrentBag<string> acked, CancellationToken stop)
    {
        var batch = 0;
        while (!stop.IsCancellationRequested)
        {
            var ids = Enumerable.Range(0, 200).Select(i => $"s{sender}-b{batch}-{i}").ToList();
            batch++;
            try
            {
                using var response = await client.PostAsync("/v1/streams/ecommerce/events", Body(ids), stop);
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    foreach (var id in ids) { acked.Add(id); }
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // The server was killed mid-request: this batch was never acknowledged.
                if (stop.IsCancellationRequested) { return; }
                await Task.Delay(50, CancellationToken.None);
            }
        }
    }

    private static ByteArrayContent Body(IReadOnlyList<string> ids, string tenant = "kill")
    {
        var generator = new EcommerceEvents(new Random(ids.Count == 0 ? 0 : ids[0].GetHashCode(StringComparison.Ordinal)));
        var content = new ByteArrayContent(generator.Batch(tenant, ids, new DateTime(2025, 11, 8, 12, 0, 0, DateTimeKind.Utc)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private static HttpClient Client(Uri address, string token)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }
}
