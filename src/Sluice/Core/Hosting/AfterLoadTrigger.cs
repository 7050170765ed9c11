using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;

namespace Sluice.Core.Hosting;

/// <summary>
/// Runs the after-load jobs when sources report a commit, coalescing bursts: a signal while the jobs run makes them
/// run once more afterwards, never once per file. A quiet period of <see cref="Settle"/> lets a burst of files land first.
/// </summary>
internal sealed class AfterLoadTrigger(IReadOnlyList<JobDefinition> jobs, Func<JobDefinition, CancellationToken, Task> run, TimeProvider time, ILogger log)
{
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);

    // One pending signal is all that matters, so the channel holds one and drops the rest: bounded by design.
    private readonly System.Threading.Channels.Channel<bool> _signals =
        System.Threading.Channels.Channel.CreateBounded<bool>(new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });

    public Task SignalAsync(CancellationToken ct)
    {
        _signals.Writer.TryWrite(true);
        return Task.CompletedTask;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        if (jobs.Count == 0)
        {
            return;
        }

        try
        {
            while (await _signals.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                await Task.Delay(Settle, time, ct).ConfigureAwait(false);
                _signals.Reader.TryRead(out _);
                foreach (var job in jobs)
                {
                    try
                    {
                        await run(job, ct).ConfigureAwait(false);
                    }
                    catch (SluiceException e)
                    {
                        HostLog.AfterLoadRefused(log, job.FullName, e.Message);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        HostLog.AfterLoadFailed(log, e, job.FullName);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutdown: a job cut short is recorded as interrupted and redone by the next run.
        }
    }
}
