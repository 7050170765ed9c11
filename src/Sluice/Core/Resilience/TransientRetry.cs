using Polly;

namespace Sluice.Core.Resilience;

/// <summary>A failed attempt about to be tried again: its number (1 for the first), the error, and the pause before the next.</summary>
public readonly record struct RetryAttempt(int Attempt, Exception Error, TimeSpan Delay);

/// <summary>
/// Runs a write until it succeeds: a failure <c>isTransient</c> accepts is tried again as <see cref="RetryOptions"/>
/// say (each one told to <see cref="Retrying"/>: the log and the status board's retry state), any other is thrown at
/// once, and one that outlasts a bounded number of attempts is thrown as a <see cref="RetriesExhaustedException"/>
/// naming <c>what</c>. <see cref="Recovered"/> hears of a success that needed more than one attempt. One instance
/// serves concurrent calls: the count of a call lives in its own Polly context.
/// </summary>
public sealed class TransientRetry
{
    private static readonly ResiliencePropertyKey<int> Failed = new("sluice.failed-attempts");

    private readonly string _what;
    private readonly RetryOptions _options;
    private readonly Func<Exception, bool> _isTransient;
    private readonly ResiliencePipeline _pipeline;

    public TransientRetry(string what, RetryOptions options, TimeProvider time, Func<Exception, bool> isTransient)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(isTransient);
        _what = what;
        _options = options;
        _isTransient = isTransient;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddTransientRetry(options, isTransient, args =>
            {
                args.Context.Properties.Set(Failed, args.AttemptNumber + 1);
                Retrying?.Invoke(new RetryAttempt(args.AttemptNumber + 1, args.Outcome.Exception!, args.RetryDelay));
                return ValueTask.CompletedTask;
            })
            .Build();
    }

    public Action<RetryAttempt>? Retrying { get; init; }

    /// <summary>The attempts a success took, when more than one.</summary>
    public Action<int>? Recovered { get; init; }

    public async Task RunAsync(Func<CancellationToken, Task> action, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(action);
        var context = ResilienceContextPool.Shared.Get(ct);
        try
        {
            await _pipeline.ExecuteAsync(static async (c, a) => await a(c.CancellationToken).ConfigureAwait(false), context, action).ConfigureAwait(false);
            if (context.Properties.TryGetValue(Failed, out var failed)) { Recovered?.Invoke(failed + 1); }
        }
        catch (Exception e) when (_options.Attempts is { } attempts && !ct.IsCancellationRequested && _isTransient(e))
        {
            throw new RetriesExhaustedException(_what, attempts, e);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }
}
