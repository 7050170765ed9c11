using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Sluice.Core.Resilience;

/// <summary>
/// Builds Polly retry (and per-attempt timeout) strategies from <see cref="RetryOptions"/>, on the engine's
/// <see cref="TimeProvider"/> so tests drive the pauses with a fake clock. Nothing is retried once the caller's token
/// is cancelled: a stop is never taken for a transient failure.
/// </summary>
public static class RetryStrategies
{
    /// <summary>
    /// Adds the retry of <paramref name="options"/> to <paramref name="builder"/>, handling the outcomes
    /// <paramref name="transient"/> accepts, then the per-attempt timeout (whose expiry, a
    /// <see cref="TimeoutRejectedException"/>, the predicate decides on like any other outcome).
    /// </summary>
    /// <param name="delay">A pause the outcome asks for (a <c>Retry-After</c>), or null for the back-off's.</param>
    public static ResiliencePipelineBuilder<T> AddTransientRetry<T>(
        this ResiliencePipelineBuilder<T> builder, RetryOptions options, Func<Outcome<T>, bool> transient,
        Func<OnRetryArguments<T>, ValueTask>? onRetry = null, Func<Outcome<T>, TimeSpan?>? delay = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Retries is not <= 0)
        {
            builder.AddRetry(Configure(new RetryStrategyOptions<T>(), options, transient, onRetry, delay));
        }

        if (options.AttemptTimeout is { } timeout) { builder.AddTimeout(timeout); }
        return builder;
    }

    /// <inheritdoc cref="AddTransientRetry{T}"/>
    public static ResiliencePipelineBuilder AddTransientRetry(
        this ResiliencePipelineBuilder builder, RetryOptions options, Func<Exception, bool> transient, Func<OnRetryArguments<object>, ValueTask>? onRetry = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Retries is not <= 0)
        {
            builder.AddRetry(Configure(new RetryStrategyOptions(), options, o => o.Exception is { } e && transient(e), onRetry, null));
        }

        if (options.AttemptTimeout is { } timeout) { builder.AddTimeout(timeout); }
        return builder;
    }

    private static TStrategy Configure<TStrategy, T>(
        TStrategy strategy, RetryOptions options, Func<Outcome<T>, bool> transient,
        Func<OnRetryArguments<T>, ValueTask>? onRetry, Func<Outcome<T>, TimeSpan?>? delay)
        where TStrategy : RetryStrategyOptions<T>
    {
        strategy.ShouldHandle = args => ValueTask.FromResult(!args.Context.CancellationToken.IsCancellationRequested && transient(args.Outcome));
        strategy.MaxRetryAttempts = options.Retries ?? int.MaxValue;
        strategy.Delay = options.Delay;
        strategy.MaxDelay = options.MaxDelay;
        strategy.BackoffType = DelayBackoffType.Exponential;
        strategy.UseJitter = options.Jitter;
        strategy.OnRetry = onRetry;
        if (delay is not null)
        {
            strategy.DelayGenerator = args => ValueTask.FromResult(delay(args.Outcome));
        }

        return strategy;
    }
}
