using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace Sluice.Recipes.Generators;

/// <summary>Options of <c>sluice generate tenant-analytics</c>.</summary>
public sealed record TenantAnalyticsGeneratorOptions
{
    /// <summary>The server, for example http://127.0.0.1:7070.</summary>
    public required Uri Url { get; init; }

    /// <summary>Writer token per tenant; every tenant sends with its own.</summary>
    public required IReadOnlyDictionary<string, string> Tokens { get; init; }

    /// <summary>Events per second, all tenants together.</summary>
    public double Rate { get; init; } = 100;

    /// <summary>Send in bursts: five times the rate for one second, then four quiet seconds (the same average).</summary>
    public bool Burst { get; init; }

    /// <summary>Stop after this long (null: until cancelled).</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Events per request (default 100).</summary>
    public int BatchSize { get; init; } = 100;

    /// <summary>Share of events that are sent a second time, as client retries do (they land once).</summary>
    public double RetryRatio { get; init; } = 0.01;

    public string Stream { get; init; } = "ecommerce";

    public int? Seed { get; init; }
}

/// <summary>What a generator run did.</summary>
public sealed record GeneratorStats(long Sent, long Accepted, long Duplicates, long Rejected, long Throttled, long Failed)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Sent:N0} sent, {Accepted:N0} accepted ({Duplicates:N0} duplicates), {Rejected:N0} rejected, {Throttled:N0} requests throttled (429/503, retried), {Failed:N0} failed");
}

/// <summary>
/// Sends realistic e-commerce events to a running tenant-analytics server, each tenant with its own writer token, at a
/// steady rate or in bursts. Some events are sent twice (client retries); 429 and 503 answers are retried after
/// their Retry-After, as a well-behaved client does.
/// </summary>
public sealed class TenantAnalyticsGenerator(TenantAnalyticsGeneratorOptions options, TimeProvider time)
{
#pragma warning disable CA5394 // Sample data, not security.
    private readonly Random _random = options.Seed is { } s ? new Random(s) : new Random();
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private long _sequence;
    private long _sent, _accepted, _duplicates, _rejected, _throttled, _failed;

    public GeneratorStats Stats => new(Interlocked.Read(ref _sent), Interlocked.Read(ref _accepted), Interlocked.Read(ref _duplicates), Interlocked.Read(ref _rejected), Interlocked.Read(ref _throttled), Interlocked.Read(ref _failed));

    public async Task<GeneratorStats> RunAsync(Action<GeneratorStats>? everySecond, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = options.Url, Timeout = TimeSpan.FromSeconds(60) };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (options.Duration is { } d) { stop.CancelAfter(d); }
        var events = new EcommerceEvents(_random);
        var tenants = options.Tokens.Keys.Order(StringComparer.Ordinal).ToList();
        var inflight = new List<Task>();
        var started = time.GetUtcNow();
        double owed = 0;
        var tick = TimeSpan.FromMilliseconds(100);
        var lastReport = started;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var elapsed = time.GetUtcNow() - started;
                var rate = options.Rate;
                if (options.Burst) { rate = elapsed.TotalSeconds % 5 < 1 ? options.Rate * 5 : 0; }
                owed += rate * tick.TotalSeconds;
                while (owed >= 1 && !stop.IsCancellationRequested)
                {
                    var count = (int)Math.Min(owed, options.BatchSize);
                    owed -= count;
                    var tenant = tenants[_random.Next(tenants.Count)];
                    var body = Body(events, tenant, count);
                    inflight.Add(SendAsync(client, tenant, body, count, stop.Token));
                    if (_random.NextDouble() < options.RetryRatio * options.BatchSize / Math.Max(1, count))
                    {
                        inflight.Add(SendAsync(client, tenant, body, count, stop.Token));
                    }
                }

                inflight.RemoveAll(t => t.IsCompleted);
                if (inflight.Count > 64)
                {
                    // The server is slower than the rate: wait instead of piling up requests (memory stays bounded).
                    await Task.WhenAny(inflight).ConfigureAwait(false);
                }

                if (time.GetUtcNow() - lastReport >= TimeSpan.FromSeconds(1))
                {
                    everySecond?.Invoke(Stats);
                    lastReport = time.GetUtcNow();
                }

                await Task.Delay(tick, time, stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Duration reached or Ctrl-C.
        }

        try
        {
            await Task.WhenAll(inflight).WaitAsync(TimeSpan.FromSeconds(30), time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or HttpRequestException)
        {
            // Requests cut short by the stop are counted as failed.
        }

        return Stats;
    }

    private byte[] Body(EcommerceEvents events, string tenant, int count)
    {
        var buffer = new ArrayBufferWriter<byte>(count * 700);
        buffer.Write("["u8);
        var now = time.GetUtcNow().UtcDateTime;
        for (var i = 0; i < count; i++)
        {
            if (i > 0) { buffer.Write(","u8); }
            var id = string.Create(CultureInfo.InvariantCulture, $"{_run}-{Interlocked.Increment(ref _sequence)}");
            events.Write(buffer, tenant, id, now.AddMilliseconds(-_random.Next(5000)));
        }

        buffer.Write("]"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private async Task SendAsync(HttpClient client, string tenant, byte[] body, int count, CancellationToken ct)
    {
        Interlocked.Add(ref _sent, count);
        for (var attempt = 0; attempt < 20 && !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/streams/{options.Stream}/events") { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Tokens[tenant]);
                using var response = await client.SendAsync(request, ct).ConfigureAwait(false);
                if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref _throttled);
                    var wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);
                    await Task.Delay(wait, time, ct).ConfigureAwait(false);
                    continue;
                }

                if (response.StatusCode != HttpStatusCode.Accepted)
                {
                    Interlocked.Add(ref _failed, count);
                    return;
                }

                using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
                Interlocked.Add(ref _accepted, json.RootElement.GetProperty("accepted").GetInt64());
                Interlocked.Add(ref _duplicates, json.RootElement.GetProperty("duplicates").GetInt64());
                Interlocked.Add(ref _rejected, json.RootElement.GetProperty("rejected").GetArrayLength());
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), time, ct).ConfigureAwait(false);
            }
        }

        Interlocked.Add(ref _failed, count);
    }

    /// <summary>Reads a token file (<c>tenant token</c> per line; # comments).</summary>
    public static Dictionary<string, string> ReadTokenFile(string path)
    {
        var tokens = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(path))
        {
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#')) { continue; }
            var parts = text.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2) { tokens[parts[0]] = parts[1].Trim(); }
        }

        return tokens;
    }
}
