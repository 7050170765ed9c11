using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Http.Ingest;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

/// <summary>
/// A damaged landing log is never a silent stall: real `sluice run` processes over real segment files that a test cuts,
/// tears or flips. A torn tail after an unclean stop is cut and said so; any other damage is refused with segment and
/// offset (503, red health), nothing answers 202 that would not land, and SIGTERM still ends the process in time.
/// </summary>
public sealed class LandingDamageTests
{
    /// <summary>The host's stop bound (the pipeline's 10 s drain, a 10 s margin, 5 s to close) and room for the process to exit on a loaded machine.</summary>
    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(50);

    private static readonly DateTime Day = new(2025, 11, 8, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task Clean_stop_then_bytes_cut_from_the_newest_segment_refuses_ingest_with_segment_and_offset_fails_health_and_SIGTERM_stops_it()
    {
        using var engine = new Engine();
        var token = Writer(engine);
        using (var first = Start(engine))
        {
            using var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(first), token);
            using var accepted = await PostAsync(client, ["a-1", "a-2", "a-3"]);
            accepted.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await WaitForCountAsync(engine, 3)).ShouldBe(3);
            first.Signal(15);
            (await first.WaitAsync(ExitDeadline)).ShouldBe(0, first.Stderr);
        }

        var segment = NewestSegment(engine);
        var length = new FileInfo(segment).Length;
        var lastStart = RecordStarts(segment).Last();
        Truncate(segment, length - 20);

        using var second = Start(engine);
        HttpStatusCode ingest, healthz;
        string ingestBody, healthBody;
        using (var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(second), token))
        {
            // Sized so that the next event starts 20 bytes before the old end, which the sink had committed. Before this
            // change both were accepted (202) and never landed: the pipeline resumed at the old end, read the high half of
            // the second event's arrival time as a record size running past the log's end, and read it again forever,
            // ignoring SIGTERM. So the stop comes before the assertions.
            using var refused = await PostJsonAsync(client, PageView("b-1", (int)(length - 20 - lastStart)));
            using var also = await PostJsonAsync(client, PageView("b-2", 200));
            (ingest, ingestBody) = (refused.StatusCode, await refused.Content.ReadAsStringAsync());
            also.StatusCode.ShouldBe(refused.StatusCode);
            using var health = await client.GetAsync("/healthz");
            (healthz, healthBody) = (health.StatusCode, await health.Content.ReadAsStringAsync());
        }

        second.Signal(15);
        var exit = await second.WaitAsync(ExitDeadline);

        ingest.ShouldBe(HttpStatusCode.ServiceUnavailable, ingestBody);
        var json = JsonDocument.Parse(ingestBody).RootElement;
        json.GetProperty("segment").GetString().ShouldBe(Path.GetFileName(segment));
        var offset = json.GetProperty("offset").GetInt64();
        offset.ShouldBe(lastStart, "the cut record starts there");
        var error = json.GetProperty("error").GetString()!;
        error.ShouldContain($"damaged in segment {Path.GetFileName(segment)} at offset {offset}");
        error.ShouldContain("after a clean stop");
        error.ShouldContain("sluice landing repair");
        healthz.ShouldBe(HttpStatusCode.ServiceUnavailable);
        JsonDocument.Parse(healthBody).RootElement.GetProperty("problems")[0].GetProperty("reason").GetString().ShouldBe(error);

        second.Stderr.ShouldContain($"damaged in segment {Path.GetFileName(segment)}");
        second.Stderr.ShouldNotContain("torn tail");
        exit.ShouldBe(0, "the damaged run served reads with health red until the stop, which is clean");
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(3);
    }

    [Fact]
    public async Task Unclean_stop_with_a_torn_tail_cuts_it_and_says_where_and_every_acknowledged_event_lands_once()
    {
        using var engine = new Engine();
        var token = Writer(engine);
        var acked = new ConcurrentBag<string>();
        using (var first = Start(engine))
        {
            using var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(first), token);
            using var stop = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 2).Select(s => SendUntilStoppedAsync(client, s, acked, stop.Token)).ToList();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (acked.Count < 1000 && DateTime.UtcNow < deadline) { await Task.Delay(20); }
            first.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(senders);
        }

        var segment = NewestSegment(engine);
        var end = new FileInfo(segment).Length;
        await using (var stream = new FileStream(segment, FileMode.Append))
        {
            // A record header promising more bytes than reached the disk, as a crash mid-write leaves it.
            stream.Write([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
        }

        var (code, _, err) = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        code.ShouldBe(0, err);
        err.ShouldContain($"after an unclean stop, cut a torn tail of 11 bytes at offset {end} of segment {Path.GetFileName(segment)}");
        err.ShouldNotContain("damaged");
        new FileInfo(segment).Length.ShouldBe(end);

        var landed = engine.Services.Query.Query("SELECT event_id FROM analytics.events").Rows.Select(r => (string)r[0]!).ToList();
        landed.Count.ShouldBe(landed.Distinct().Count(), "no event landed twice");
        acked.Except(landed).ShouldBeEmpty("every acknowledged event is in the lake");
    }

    [Fact]
    public async Task A_flipped_byte_in_the_middle_of_an_older_segment_is_refused_with_segment_and_offset_and_what_is_before_it_lands()
    {
        using var engine = new Engine();
        var token = Writer(engine);
        var records = await WriteLogAsync(engine, 40, segmentBytes: 4096);
        var oldest = Directory.GetFiles(LogFolder(engine), "*.seg").Order(StringComparer.Ordinal).ToList();
        oldest.Count.ShouldBeGreaterThan(2, "the log has older segments");
        var damaged = records[2];
        using (var stream = new FileStream(oldest[0], FileMode.Open, FileAccess.ReadWrite))
        {
            // A byte inside the third event's JSON: its size is intact, so every record after it is whole.
            stream.Position = damaged.Offset + LandingRecord.HeaderSize + 10;
            var b = stream.ReadByte();
            stream.Position--;
            stream.WriteByte((byte)(b ^ 0x20));
        }

        using var server = Start(engine);
        using var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(server), token);
        using var refused = await PostAsync(client, ["c-1"]);
        refused.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        var json = await TenantAnalyticsServer.JsonAsync(refused);
        json.GetProperty("segment").GetString().ShouldBe(Path.GetFileName(oldest[0]));
        json.GetProperty("offset").GetInt64().ShouldBe(damaged.Offset);
        json.GetProperty("error").GetString()!.ShouldContain("fails its checksum");
        using var health = await client.GetAsync("/healthz");
        health.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);

        // The two events before the damage land; the pipeline stops there.
        (await WaitForCountAsync(engine, 2)).ShouldBe(2);
        server.Stderr.ShouldContain($"damaged in segment {Path.GetFileName(oldest[0])} at offset {damaged.Offset}");
        server.Signal(15);
        (await server.WaitAsync(ExitDeadline)).ShouldBe(0);
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(2);
    }

    [Fact]
    public async Task Landing_repair_pads_what_was_lost_keeps_a_copy_dead_letters_it_and_ingest_lands_again()
    {
        using var engine = new Engine();
        var token = Writer(engine);
        await WriteLogAsync(engine, 5, segmentBytes: 1 << 20);
        var once = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        once.Code.ShouldBe(0, once.Err);
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(5);
        var segment = NewestSegment(engine);
        var length = new FileInfo(segment).Length;
        Truncate(segment, length - 20);

        var refused = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        refused.Code.ShouldBe(1, "a run-once fails at the damage");
        refused.Err.ShouldContain("sluice landing repair");

        var (code, stdout, err) = await SluiceProcess.RunAsync(engine.DataRoot, "landing", "repair", "tenant-analytics");
        code.ShouldBe(0, err);
        stdout.ShouldContain("ecommerce: gave up 1 range(s)");
        var kept = Directory.GetFiles(Path.Combine(LogFolder(engine), "damaged")).ShouldHaveSingleItem();
        new FileInfo(kept).Length.ShouldBe(length - 20, "the segment as it was is kept");
        new FileInfo(segment).Length.ShouldBe(length, "padding takes the lost bytes' place, so every offset keeps its meaning");
        var letter = engine.Services.DeadLetters.List(null).ShouldHaveSingleItem();
        letter.Position.ShouldContain($"landing segment {Path.GetFileName(segment)}, offsets ");
        letter.Payload!.ShouldStartWith("base64:");

        using var server = Start(engine);
        using (var client = Client(await TenantAnalyticsDiskFullTests.ServingAtAsync(server), token))
        {
            using var accepted = await PostAsync(client, ["after-1", "after-2"]);
            accepted.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            using var health = await client.GetAsync("/healthz");
            health.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        (await WaitForCountAsync(engine, 7)).ShouldBe(7);
        server.Signal(15);
        (await server.WaitAsync(ExitDeadline)).ShouldBe(0, server.Stderr);
        engine.Count("SELECT count(DISTINCT event_id) FROM analytics.events").ShouldBe(7);
    }

    /// <summary>Events written straight into the stream's landing log (closed cleanly), one flush each; returns where each starts.</summary>
    private static async Task<List<(long Offset, string Id)>> WriteLogAsync(Engine engine, int events, long segmentBytes)
    {
        var generator = new EcommerceEvents(new Random(7));
        var written = new List<(long, string)>();
        await using var log = LandingLog.Open(LogFolder(engine), segmentBytes, 1 << 20, NullLogger.Instance);
        for (var i = 0; i < events; i++)
        {
            var id = $"w-{i}";
            var json = Encoding.UTF8.GetBytes(generator.Json("acme", id, Day));
            var size = LandingRecord.Size(4, json.Length);
            var start = log.AppendedEnd;
            var end = log.Append(size, span =>
            {
                LandingRecord.Write(span, (ulong)i + 1, 1_000, "acme"u8, json);
                return size;
            });
            await log.WaitDurableAsync(end);
            written.Add((start, id));
        }

        return written;
    }

    /// <summary>A page view whose landing record (tenant "acme") is exactly <paramref name="recordBytes"/> long.</summary>
    private static string PageView(string id, int recordBytes)
    {
        const string Rest = "\",\"schema_version\":2,\"event_type\":\"page_view\",\"event_ts\":\"2025-11-08T11:05:00Z\",\"customer\":{\"id\":\"c-2\"}}";
        var pad = recordBytes - LandingRecord.Size(4, 0) - "{\"event_id\":\"".Length - id.Length - Rest.Length;
        pad.ShouldBeGreaterThanOrEqualTo(0);
        return "{\"event_id\":\"" + id + new string('x', pad) + Rest;
    }

    private static async Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        return await client.PostAsync("/v1/streams/ecommerce/events", content);
    }

    private static List<long> RecordStarts(string segment)
    {
        var bytes = File.ReadAllBytes(segment);
        var starts = new List<long>();
        for (var at = 0; at < bytes.Length && LandingRecord.TryRead(bytes.AsSpan(at), out var size) == ReadStatus.Ok; at += size) { starts.Add(at); }
        return starts;
    }

    private static string LogFolder(Engine engine) => Path.Combine(engine.DataRoot, "landing", "ecommerce");

    private static string NewestSegment(Engine engine) => Directory.GetFiles(LogFolder(engine), "*.seg").Order(StringComparer.Ordinal).Last();

    private static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.SetLength(length);
    }

    private static string Writer(Engine engine) => new TokenStore(engine.Services.Metadata, engine.Services.Time).Create("acme", TokenRole.Writer, null).Token;

    private static SluiceProcess Start(Engine engine) => SluiceProcess.Start(engine.DataRoot, "run", "tenant-analytics", "--port", "0");

    private static HttpClient Client(Uri address, string token)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, string[] ids, CancellationToken ct = default)
    {
        using var content = new ByteArrayContent(new EcommerceEvents(new Random(ids.Length)).Batch("acme", ids, Day));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return await client.PostAsync("/v1/streams/ecommerce/events", content, ct);
    }

    private static async Task<long> WaitForCountAsync(Engine engine, long expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        long last = -1;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = engine.Count("SELECT count(*) FROM analytics.events");
            }
            catch (Core.SluiceException)
            {
                last = -1;
            }

            if (last == expected) { return last; }
            await Task.Delay(50);
        }

        return last;
    }

    private static async Task SendUntilStoppedAsync(HttpClient client, int sender, ConcurrentBag<string> acked, CancellationToken stop)
    {
        for (var batch = 0; !stop.IsCancellationRequested; batch++)
        {
            var ids = Enumerable.Range(0, 100).Select(i => $"s{sender}-b{batch}-{i}").ToList();
            try
            {
                using var response = await PostAsync(client, [.. ids], stop);
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    foreach (var id in ids) { acked.Add(id); }
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // Killed mid-request: this batch was never acknowledged.
                if (stop.IsCancellationRequested) { return; }
                await Task.Delay(50, CancellationToken.None);
            }
        }
    }
}
