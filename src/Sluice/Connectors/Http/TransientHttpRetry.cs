using Polly;
using Polly.Retry;
using Sluice.Core.Resilience;

namespace Sluice.Connectors.Http;

/// <summary>
/// The retry pipeline for a JSON POST to a receiver Sluice does not own (alert webhooks, OpenLineage): what
/// <see cref="HttpFailures"/> calls transient is tried again with exponential back-off and jitter; any other answer is
/// the receiver's final word. Polly's timeout bounds each attempt, so the caller's HttpClient must not have one of its
/// own (it would cut the retries short).
/// </summary>
internal static class TransientHttpRetry
{
    public static ResiliencePipeline<HttpResponseMessage> Pipeline(
        TimeProvider time, int retries, TimeSpan delay, TimeSpan attemptTimeout, Func<OnRetryArguments<HttpResponseMessage>, ValueTask>? onRetry = null) =>
        new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            // Polly's own cap on an exponential back-off (24 h): these receivers are retried a few times at most.
            .AddTransientRetry(new RetryOptions(delay, TimeSpan.FromDays(1), Math.Max(1, retries) + 1) { Jitter = true, AttemptTimeout = attemptTimeout }, HttpFailures.IsTransient, onRetry)
            .Build();
}
