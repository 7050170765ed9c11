using System.Net;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Sluice.Connectors.Http;

/// <summary>
/// The retry pipeline for a JSON POST to a receiver Sluice does not own (alert webhooks, OpenLineage): a refused
/// connection, an attempt past its timeout, a 5xx, 408 or 429 is worth another try with exponential back-off; any
/// other answer is the receiver's final word. Polly's timeout bounds each attempt, so the caller's HttpClient must
/// not have one of its own (it would cut the retries short).
/// </summary>
internal static class TransientHttpRetry
{
    public static ResiliencePipeline<HttpResponseMessage> Pipeline(
        TimeProvider time, int retries, TimeSpan delay, TimeSpan attemptTimeout, Func<OnRetryArguments<HttpResponseMessage>, ValueTask>? onRetry = null) =>
        new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(r => (int)r.StatusCode >= 500 || r.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout),
                MaxRetryAttempts = Math.Max(1, retries),
                Delay = delay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = onRetry,
            })
            .AddTimeout(attemptTimeout)
            .Build();
}
