using System.Net;
using Polly;
using Polly.Timeout;

namespace Sluice.Connectors.Http;

/// <summary>
/// What is transient in a call to an HTTP service Sluice does not own (the API sink, webhooks, OpenLineage,
/// Salesforce): no answer (a refused or reset connection, an attempt past its timeout) or an answer that says "later"
/// (5xx, 408, 429). Any other answer is the server's final word: retrying it only repeats it.
/// </summary>
public static class HttpFailures
{
    public static bool IsTransient(HttpStatusCode status) =>
        (int)status >= 500 || status is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout;

    /// <summary>No answer: the connection failed, or the attempt's timeout (Polly's, or HttpClient's own) ran out.</summary>
    public static bool IsTransient(Exception error) => error is HttpRequestException or TimeoutRejectedException or TimeoutException or TaskCanceledException;

    public static bool IsTransient(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is { } e ? IsTransient(e) : outcome.Result is { } r && IsTransient(r.StatusCode);

    /// <summary>The server's <c>Retry-After</c> (seconds or a date), within 0 and <paramref name="max"/>; null lets the back-off decide.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeProvider time, TimeSpan max)
    {
        ArgumentNullException.ThrowIfNull(time);
        var header = response?.Headers.RetryAfter;
        TimeSpan? wait = header?.Delta ?? (header?.Date is { } date ? date - time.GetUtcNow() : null);
        if (wait is not { } w) { return null; }
        return w < TimeSpan.Zero ? TimeSpan.Zero : w > max ? max : w;
    }
}
