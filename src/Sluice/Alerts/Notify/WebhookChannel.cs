using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Polly;
using Polly.Timeout;
using Sluice.Connectors.Http;

namespace Sluice.Alerts.Notify;

/// <summary>
/// POSTs each notice as one JSON object. Polly retries a refused connection, a timeout, a 5xx, 408 or 429
/// (<see cref="WebhookOptions.Retries"/> times, doubling pauses with jitter, on the engine's clock), each attempt
/// bounded by <see cref="WebhookOptions.Timeout"/>; any other 4xx is permanent (the receiver will never take it).
/// </summary>
public sealed class WebhookChannel : IAlertChannel
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private readonly WebhookOptions _options;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public WebhookChannel(WebhookOptions options, TimeProvider time, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        // Polly's timeout bounds each attempt; HttpClient's own would cut the retries short.
        _http = new HttpClient(handler ?? new SocketsHttpHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _pipeline = TransientHttpRetry.Pipeline(time, options.Retries, options.RetryDelay, options.Timeout);
    }

    public string Name => "webhook";

    public string Target => _options.Url.ToString();

    public async Task<int> DeliverAsync(AlertNotice notice, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(notice);
        var body = JsonSerializer.SerializeToUtf8Bytes(Payload(notice), Json);
        var attempts = 0;
        try
        {
            using var response = await _pipeline.ExecuteAsync(
                async token =>
                {
                    attempts++;
                    using var content = new ByteArrayContent(body);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    return await _http.PostAsync(_options.Url, content, token).ConfigureAwait(false);
                },
                ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) { return attempts; }
            var code = (int)response.StatusCode;
            throw new AlertDeliveryException($"{_options.Url} answered HTTP {code} {response.ReasonPhrase}", attempts, permanent: code is >= 400 and < 500 and not 408 and not 429);
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutRejectedException)
        {
            throw new AlertDeliveryException($"{_options.Url}: {e.Message}", attempts, permanent: false);
        }
    }

    /// <summary>The JSON a receiver gets (documented in docs/OBSERVABILITY.md, "Alerts").</summary>
    public static object Payload(AlertNotice n)
    {
        ArgumentNullException.ThrowIfNull(n);
        return new
        {
            n.Key, Status = n.Event, n.Recipe, n.Alert, n.Kind, n.Severity, n.Subject, n.Message, At = n.At.UtcDateTime,
            FiringSince = n.FiringSince?.UtcDateTime,
        };
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}
