using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.Recipes.Generators;

namespace Sluice.Bench;

/// <param name="HonourRetryAfter">
/// Wait as long as a 429 or 503 says in its Retry-After (at most 10 s, 1 s without one), as a well-behaved client
/// does: what a server under more load than it processes sustains (bench cluster). False: 50 ms, to keep the pressure
/// on (bench ingest's overload phase).
/// </param>
public sealed record LoadOptions(Uri Url, string Token, string Tenant, int Batch, int Concurrency, TimeSpan Duration, double? Rate, bool HonourRetryAfter = false);

public sealed record LoadResult(long Requests, long Events, long Accepted, long Throttled, long Errors, double Seconds, double P50Ms, double P99Ms)
{
    public double EventsPerSecond => Seconds <= 0 ? 0 : Events / Seconds;

    public string ToJson() => JsonSerializer.Serialize(this);

    public static LoadResult FromJson(string json) => JsonSerializer.Deserialize<LoadResult>(json) ?? throw new InvalidDataException("empty load result");
}

/// <summary>
/// The load generator of <c>sluice bench ingest</c>, run as its own process so it does not share a runtime with the
/// server it measures. Bodies are realistic event batches made once; each request patches fresh event ids into a copy
/// (unique ids, within a run and across runs, so deduplication has nothing to drop). Closed loop (<c>Concurrency</c> requests in flight), or paced at a
/// fixed <c>Rate</c> of events per second.
/// </summary>
public static class IngestLoadGenerator
{
    private const int IdLength = 16;
    private static readonly byte[] Placeholder = Encoding.ASCII.GetBytes(new string('@', IdLength));

    public static async Task<LoadResult> RunAsync(LoadOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var templates = Enumerable.Range(0, 8).Select(i => Template(options.Tenant, options.Batch, i)).ToList();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency, PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
        using var client = new HttpClient(handler) { BaseAddress = options.Url, Timeout = TimeSpan.FromSeconds(60) };
        long requests = 0, events = 0, throttled = 0, errors = 0, accepted = 0;
        // Unique across runs too: every phase of a bench is its own process, and ids counted from zero again would be
        // duplicates of the previous phase's, which the server drops instead of landing (cheaper than real work).
        var nextId = (long)System.Security.Cryptography.RandomNumberGenerator.GetInt32(1 << 26) << 36;
        var latencies = new List<double>[options.Concurrency];
        var interval = options.Rate is { } rate ? TimeSpan.FromSeconds(options.Batch / rate) : TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        long nextSlot = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(options.Duration);
        var workers = Enumerable.Range(0, options.Concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>(4096);
            var t = 0;
            while (!stop.IsCancellationRequested)
            {
                if (interval > TimeSpan.Zero)
                {
                    var slot = Interlocked.Add(ref nextSlot, interval.Ticks) - interval.Ticks;
                    var wait = TimeSpan.FromTicks(slot) - clock.Elapsed;
                    if (wait > TimeSpan.Zero)
                    {
                        try { await Task.Delay(wait, stop.Token).ConfigureAwait(false); }
                        catch (OperationCanceledException) { break; }
                    }
                }

                var (template, offsets) = templates[(w + t++) % templates.Count];
                var body = (byte[])template.Clone();
                foreach (var at in offsets)
                {
                    var id = Interlocked.Increment(ref nextId);
                    Encoding.ASCII.GetBytes(id.ToString("x16", CultureInfo.InvariantCulture), body.AsSpan(at, IdLength));
                }

                var started = Stopwatch.GetTimestamp();
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/ecommerce/events") { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Token);
                    using var response = await client.SendAsync(request, CancellationToken.None).ConfigureAwait(false);
                    await response.Content.ReadAsByteArrayAsync(CancellationToken.None).ConfigureAwait(false);
                    Interlocked.Increment(ref requests);
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        Interlocked.Increment(ref accepted);
                        Interlocked.Add(ref events, options.Batch);
                        mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
                    else if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
                    {
                        Interlocked.Increment(ref throttled);
                        var pause = options.HonourRetryAfter ? RetryAfter(response) : TimeSpan.FromMilliseconds(50);
                        try { await Task.Delay(pause, stop.Token).ConfigureAwait(false); }
                        catch (OperationCanceledException) { break; }
                    }
                    else
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }, CancellationToken.None)).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        var seconds = clock.Elapsed.TotalSeconds;
        var all = latencies.Where(l => l is not null).SelectMany(l => l).Order().ToArray();
        return new LoadResult(requests, events, accepted, throttled, errors, seconds, Percentile(all, 0.50), Percentile(all, 0.99));
    }

    /// <summary>The pause a refusal asks for: its Retry-After (seconds or a date), 1 s without one, 10 s at most.</summary>
    internal static TimeSpan RetryAfter(HttpResponseMessage response)
    {
        var after = response.Headers.RetryAfter;
        var wait = after?.Delta ?? (after?.Date is { } date ? date - DateTimeOffset.UtcNow : TimeSpan.FromSeconds(1));
        return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : wait;
    }

    internal static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    /// <summary>A batch body with placeholder ids, and where each placeholder is.</summary>
    private static (byte[] Body, int[] Offsets) Template(string tenant, int batch, int seed)
    {
        var events = new EcommerceEvents(new Random(seed));
        var buffer = new ArrayBufferWriter<byte>(batch * 700 + 2);
        if (batch > 1) { buffer.Write("["u8); }
        for (var i = 0; i < batch; i++)
        {
            if (i > 0) { buffer.Write(","u8); }
            events.Write(buffer, tenant, Encoding.ASCII.GetString(Placeholder), DateTime.UtcNow.AddSeconds(-seed));
        }

        if (batch > 1) { buffer.Write("]"u8); }
        var body = buffer.WrittenSpan.ToArray();
        var offsets = new List<int>();
        for (var at = body.AsSpan().IndexOf(Placeholder); at >= 0;)
        {
            offsets.Add(at);
            var next = body.AsSpan(at + IdLength).IndexOf(Placeholder);
            at = next < 0 ? -1 : at + IdLength + next;
        }

        return (body, offsets.ToArray());
    }
}
