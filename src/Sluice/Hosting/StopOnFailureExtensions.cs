using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>For callers that run a recipe beside other work (the demo's feeders): a failed run ends that work too.</summary>
public static class StopOnFailureExtensions
{
    /// <summary>Cancels <paramref name="stop"/> as soon as <paramref name="run"/> fails; returns <paramref name="run"/>.</summary>
    public static Task StopOnFailure(this Task run, CancellationTokenSource stop)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(stop);
        _ = run.ContinueWith(
            _ =>
            {
                try
                {
                    stop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // Everything beside the run has already ended.
                }
            },
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return run;
    }
}
