using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http;

public sealed class HttpSinkType() : SinkType<HttpSinkOptions>("http")
{
    protected override HttpSinkOptions ParseOptions(ConfigMap map, RecipeContext recipe) => HttpSinkOptions.Parse(map);

    protected override IBatchSink Create(HttpSinkOptions options, string recipe, IEngineServices services) => new HttpSink(services, recipe, options);
}

/// <summary>
/// POSTs each batch as JSON arrays of at most <see cref="HttpSinkOptions.RequestRows"/> rows, each with an
/// <c>Idempotency-Key</c> derived from its content (the same rows always carry the same key). Every attempt waits for
/// the rate limit and has its own timeout; 5xx, 408, 429 (honouring <c>Retry-After</c>), timeouts and connection
/// errors are retried with exponential back-off and jitter; a circuit breaker stops hammering an API that keeps
/// failing (while it is open, requests go straight to the dead-letter store). A request that is refused for good (another 4xx) or still fails after the retries goes to the dead-letter
/// store with the response, and the sink moves on: a slow or broken API never holds the other sinks back for long.
/// <c>sluice dlq replay</c> sends dead letters again with their original key. Where rows carry their source position,
/// the sink records after each request how far it got (<see cref="HttpSinkProgress"/>), so a replay cut into other
/// batches (whose requests, and so keys, would differ) sends nothing twice.
/// </summary>
public sealed class HttpSink : IBatchSink, IDeadLetterReplayer, Core.Status.IStatusSink
{
    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly HttpSinkOptions _options;
    private readonly ILogger _log;
    private readonly HttpClient _http;
    private readonly TokenBucket _bucket;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly CircuitBreakerStateProvider _breaker = new();
    private Core.Status.SinkStatus? _status;

    public HttpSink(IEngineServices services, string recipe, HttpSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Http");
        // Polly's timeout bounds each attempt; HttpClient's own is only a backstop.
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = options.Timeout })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        _bucket = new TokenBucket(options.RateLimit, options.RateBurst, services.Time);
        _pipeline = BuildPipeline(options, services.Time, _log, _breaker, (attempt, error) => _status?.Retrying(attempt, error, services.Time.GetUtcNow()));
        _progress = new HttpSinkProgress(new Core.Metadata.CheckpointStore(services.Metadata, services.Time));
    }

    private readonly HttpSinkProgress _progress;

    public string Name => _options.Name;

    /// <summary>Batches waiting are sent together: requests fill up to request_rows instead of ending with each batch.</summary>
    public SinkJoining Joining => SinkJoining.Waiting(50_000);

    public string DeadLetterSource => $"http:{_recipe}/{_options.Name}";

    /// <summary>Requests delivered and dead-lettered since start (for tests and the benchmark).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    public long DeadLettered => Interlocked.Read(ref _deadLettered);

    private long _delivered;
    private long _deadLettered;

    /// <summary>The breaker's state in the status figures (open: requests go straight to the dead-letter store).</summary>
    public void AttachStatus(Core.Status.SinkStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        _status = status;
        status.Breaker = () => _breaker.CircuitState switch
        {
            CircuitState.Open => "open",
            CircuitState.HalfOpen => "half_open",
            CircuitState.Isolated => "isolated",
            _ => "closed",
        };
    }

    /// <param name="retrying">Told each retry (the attempt that failed, why), for the status figures.</param>
    public static ResiliencePipeline<HttpResponseMessage> BuildPipeline(HttpSinkOptions options, TimeProvider time, ILogger log, CircuitBreakerStateProvider? breaker = null, Action<int, string>? retrying = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        // An open circuit is not retried: failing fast (to the dead-letter store) is what keeps a long outage from
        // holding this sink's queue, and with it the source and the other sinks.
        var retry = new Core.Resilience.RetryOptions(options.RetryDelay, options.RetryMaxDelay, Math.Max(1, options.Retries) + 1) { Jitter = true };
        return new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddTransientRetry(retry, HttpFailures.IsTransient, args =>
                {
                    HttpLog.Retrying(log, options.Url.ToString(), Describe(args.Outcome), args.AttemptNumber + 1, (long)args.RetryDelay.TotalMilliseconds);
                    retrying?.Invoke(args.AttemptNumber + 1, Describe(args.Outcome));
                    return ValueTask.CompletedTask;
                },
                outcome => HttpFailures.RetryAfter(outcome.Result, time, options.RetryMaxDelay))
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = args => ValueTask.FromResult(HttpFailures.IsTransient(args.Outcome)),
                FailureRatio = options.BreakerFailureRatio,
                MinimumThroughput = options.BreakerMinimumThroughput,
                SamplingDuration = options.BreakerSampling,
                BreakDuration = options.BreakerDuration,
                StateProvider = breaker,
            })
            .AddTimeout(options.Timeout)
            .Build();
    }

    /// <summary>The server's <c>Retry-After</c> (seconds or a date), capped; null lets the back-off decide.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeProvider time, TimeSpan max) => HttpFailures.RetryAfter(response, time, max);

    private static string Describe(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is { } e ? e.GetType().Name + ": " + e.Message : $"HTTP {(int)outcome.Result!.StatusCode}";

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var all in batch.Tables)
        {
            if (all.Schema.Table != _options.Table || all.Count == 0) { continue; }
            var (table, progress) = _progress.Undelivered(all, checkpointKey);
            for (var from = 0; from < table.Count; from += _options.RequestRows)
            {
                var count = Math.Min(_options.RequestRows, table.Count - from);
                var body = Encode(table, from, count);
                var key = IdempotencyKey(body);
                var error = await SendAsync(body, key, ct).ConfigureAwait(false);
                if (error is null)
                {
                    Interlocked.Increment(ref _delivered);
                    progress?.Delivered(from + count - 1);
                    continue;
                }

                var ids = table.Schema.IndexOf("event_id") is var c and >= 0 ? table.Columns[c] : null;
                var where = ids is null ? $"rows {from}..{from + count - 1}" : $"event_id {ids.GetValue(from)}..{ids.GetValue(from + count - 1)}";
                var position = $"{where} ({count} rows) of the batch at source position {batch.Position}";
                _services.DeadLetters.Add(DeadLetterSource, position, error, Payload(key, body), $"{DeadLetterSource}:{key}", count);
                Interlocked.Increment(ref _deadLettered);
                progress?.Delivered(from + count - 1);
                HttpLog.DeadLettered(_log, _options.Url.ToString(), count, error);
            }
        }
    }

    /// <summary>Sends one request through the rate limit and the resilience pipeline; null when delivered, else why not.</summary>
    private async Task<string?> SendAsync(byte[] body, string key, CancellationToken ct)
    {
        try
        {
            return await SendCoreAsync(body, key, ct).ConfigureAwait(false);
        }
        finally
        {
            // Delivered or dead-lettered: the retries of this request are over either way.
            _status?.Recovered();
        }
    }

    private async Task<string?> SendCoreAsync(byte[] body, string key, CancellationToken ct)
    {
        try
        {
            using var response = await _pipeline.ExecuteAsync(
                async token =>
                {
                    await _bucket.TakeAsync(token).ConfigureAwait(false);
                    using var request = new HttpRequestMessage(HttpMethod.Post, _options.Url) { Content = new ByteArrayContent(body) };
                    request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    request.Headers.Add("Idempotency-Key", key);
                    return await _http.SendAsync(request, token).ConfigureAwait(false);
                }, ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) { return null; }
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            var retried = HttpFailures.IsTransient(response.StatusCode) ? $" after {_options.Retries + 1} attempts" : " (not retryable)";
            return $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}{retried}: {Shorten(text)}";
        }
        catch (BrokenCircuitException e)
        {
            return $"not sent: the circuit is open after repeated failures ({e.Message})";
        }
        catch (Exception e) when (HttpFailures.IsTransient(e) && !ct.IsCancellationRequested)
        {
            return $"gave up after {_options.Retries + 1} attempts: {e.GetType().Name}: {e.Message}";
        }
    }

    private static string Shorten(string text) => text.Length > 500 ? text[..500] + "..." : text;

    private static byte[] Encode(ColumnBatch table, int from, int count)
    {
        var buffer = new ArrayBufferWriter<byte>(count * 300);
        // The writer's structure checks are for hand-written JSON; WriteArray's structure is fixed.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            RowJson.WriteArray(json, table, from, count);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private string IdempotencyKey(byte[] body) => $"{_recipe}-{_options.Name}-{Convert.ToHexStringLower(SHA256.HashData(body))[..32]}";

    private string Payload(string key, byte[] body)
    {
        var buffer = new ArrayBufferWriter<byte>(body.Length + 200);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("url", _options.Url.ToString());
            json.WriteString("idempotency_key", key);
            json.WritePropertyName("body");
            json.WriteRawValue(body, skipInputValidation: true);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public bool CanReplay(DeadLetter letter) => letter is not null && letter.Source == DeadLetterSource;

    public async Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(letter);
        using var doc = JsonDocument.Parse(letter.Payload ?? "{}");
        if (!doc.RootElement.TryGetProperty("body", out var body) || !doc.RootElement.TryGetProperty("idempotency_key", out var key))
        {
            return "the letter has no request body to send";
        }

        return await SendAsync(Encoding.UTF8.GetBytes(body.GetRawText()), key.GetString()!, ct).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal static partial class HttpLog
{
    [LoggerMessage(8001, LogLevel.Information, "POST {Url} failed ({Reason}); attempt {Attempt} in {Delay} ms")]
    public static partial void Retrying(ILogger logger, string url, string reason, int attempt, long delay);

    [LoggerMessage(8002, LogLevel.Warning, "POST {Url}: {Rows} rows sent to the dead-letter store: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string url, int rows, string reason);
}
