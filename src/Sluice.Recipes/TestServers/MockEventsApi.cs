using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sluice.Recipes.TestServers;

/// <summary>Behaviour of <see cref="MockEventsApi"/>.</summary>
public sealed class MockEventsApiOptions
{
    /// <summary>Port on 127.0.0.1 (default 8099; 0 picks a free one).</summary>
    public int Port { get; init; } = 8099;

    /// <summary>Share of requests answered with a failure on purpose (0..1, default 0): 503, 500 or 429 with <c>Retry-After: 1</c>, in turn.</summary>
    public double FailRate { get; init; }

    /// <summary>Delay before every answer (default 0).</summary>
    public TimeSpan Latency { get; init; }

    /// <summary>From start, every request is answered 503 for this long (default 0: up at once).</summary>
    public TimeSpan DownFor { get; init; }

    /// <summary>Random seed of the failures, for repeatable runs (default: random).</summary>
    public int? Seed { get; init; }
}

/// <summary>
/// The stand-in external system of the demo and the tests (the write-up's FastAPI mock): <c>POST /events</c> takes a
/// JSON array of events and records every <c>event_id</c>; a request repeating an <c>Idempotency-Key</c> it already
/// accepted is answered 200 and not counted again. <c>GET /stats</c> answers
/// <c>{"received": n, "distinct_ids": k, "failed": f}</c>. It fails on purpose as configured.
/// </summary>
public sealed class MockEventsApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly MockEventsApiOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly HashSet<long> _ids = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly Random _random;
    private readonly DateTimeOffset _started;
    private long _received;
    private long _failed;
    private long _failures;
    private int _waiting;

    private MockEventsApi(WebApplication app, MockEventsApiOptions options, TimeProvider time)
    {
        _app = app;
        _options = options;
        _time = time;
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
        _started = time.GetUtcNow();
        Latency = options.Latency;
    }

    /// <summary>Delay before every answer, from <see cref="MockEventsApiOptions.Latency"/>; tests make the API slow and fast again with it.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Requests received and not yet answered because of <see cref="Latency"/> (a sink's write in flight).</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public Uri BaseUrl { get; private set; } = new("http://127.0.0.1/");

    /// <summary>While true, every request is answered 503 (tests switch an outage on and off with it).</summary>
    public bool Down { get; set; }

    public Uri EventsUrl => new(BaseUrl, "events");

    public static async Task<MockEventsApi> StartAsync(MockEventsApiOptions options, TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{options.Port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 256L * 1024 * 1024);
        var app = builder.Build();
        var api = new MockEventsApi(app, options, time);
        app.MapPost("/events", api.PostAsync);
        app.MapGet("/stats", () => Results.Json(api.Stats()));
        await app.StartAsync(ct).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        api.BaseUrl = new Uri(address.EndsWith('/') ? address : address + "/");
        return api;
    }

    public MockApiStats Stats()
    {
        lock (_lock) { return new MockApiStats(_received, _ids.Count, _failed); }
    }

    public bool Saw(long id)
    {
        lock (_lock) { return _ids.Contains(id); }
    }

    private async Task<IResult> PostAsync(HttpRequest request, CancellationToken ct)
    {
        if (Latency is var latency && latency > TimeSpan.Zero)
        {
            Interlocked.Increment(ref _waiting);
            try
            {
                await Task.Delay(latency, _time, ct).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }

        if (Down || _time.GetUtcNow() - _started < _options.DownFor)
        {
            Interlocked.Increment(ref _failed);
            return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }

        bool fail;
        lock (_lock) { fail = _options.FailRate > 0 && _random.NextDouble() < _options.FailRate; }
        if (fail)
        {
            Interlocked.Increment(ref _failed);
            switch (Interlocked.Increment(ref _failures) % 3)
            {
                case 0:
                    request.HttpContext.Response.Headers.RetryAfter = "1";
                    return Results.StatusCode(StatusCodes.Status429TooManyRequests);
                case 1: return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
                default: return Results.StatusCode(StatusCodes.Status500InternalServerError);
            }
        }

        List<long> ids;
        try
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body, ct).ConfigureAwait(false);
            ids = EventIds(body.GetBuffer().AsSpan(0, (int)body.Length), out var error);
            if (error is not null) { return Results.BadRequest(new { error }); }
        }
        catch (JsonException e)
        {
            return Results.BadRequest(new { error = "not JSON: " + e.Message });
        }

        var key = request.Headers["Idempotency-Key"].ToString();
        lock (_lock)
        {
            if (key.Length > 0 && !_keys.Add(key)) { return Results.Ok(new { accepted = 0, duplicate = true }); }
            _received += ids.Count;
            _ids.UnionWith(ids);
        }

        return Results.Ok(new { accepted = ids.Count });
    }

    /// <summary>The <c>event_id</c> of each object of a JSON array (or of <c>{"events": [...]}</c>), read without building a document.</summary>
    private static List<long> EventIds(ReadOnlySpan<byte> json, out string? error)
    {
        var ids = new List<long>();
        var reader = new Utf8JsonReader(json);
        error = null;
        if (!reader.Read()) { error = "empty body"; return ids; }
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            while (reader.Read() && !(reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("events"u8)))
            {
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) { reader.Skip(); }
            }

            reader.Read();
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            error = "expected a JSON array of events (or {\"events\": [...]})";
            return ids;
        }

        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) { error = $"event {index}: not an object"; return ids; }
            long? id = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var isId = reader.ValueTextEquals("event_id"u8);
                reader.Read();
                if (isId && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value)) { id = value; }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) { reader.Skip(); }
            }

            if (id is null) { error = $"event {index}: no integer event_id"; return ids; }
            ids.Add(id.Value);
            index++;
        }

        return ids;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

public sealed record MockApiStats(
    [property: System.Text.Json.Serialization.JsonPropertyName("received")] long Received,
    [property: System.Text.Json.Serialization.JsonPropertyName("distinct_ids")] long DistinctIds,
    [property: System.Text.Json.Serialization.JsonPropertyName("failed")] long Failed);
