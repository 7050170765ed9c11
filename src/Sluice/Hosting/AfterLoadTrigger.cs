using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// Runs the after-load jobs when sources report a commit, coalescing bursts: a signal while the jobs run makes them
/// run once more afterwards, never once per file. A quiet period of <see cref="Settle"/> lets a burst of files land first.
/// A job that met a full disk is run again every <see cref="DiskFullRetry"/> until it succeeds, failing <c>/healthz</c>
/// with the reason meanwhile: the data it should have published has landed, and no later load may be needed to bring it.
/// </summary>
internal sealed class AfterLoadTrigger(IReadOnlyList<JobDefinition> jobs, Func<JobDefinition, CancellationToken, Task> run, IEngineServices services, ILogger log)
{
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);

    /// <summary>As the files source and the stream sinks wait for space: often enough to resume soon after space is freed.</summary>
    public static readonly TimeSpan DiskFullRetry = TimeSpan.FromSeconds(2);

    private readonly TimeProvider _time = services.Time;

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
                await Task.Delay(Settle, _time, ct).ConfigureAwait(false);
                _signals.Reader.TryRead(out _);
                var waitForSpace = false;
                foreach (var job in jobs)
                {
                    var component = $"{job.FullName}: after-load run";
                    try
                    {
                        await run(job, ct).ConfigureAwait(false);
                        services.Health.Clear(component);
                    }
                    catch (Exception e) when (e is not OperationCanceledException && Core.IO.DiskFull.Is(e))
                    {
                        var detail = Core.IO.DiskFull.Describe(e, services.Data.MetadataPath);
                        if (services.Health.Failures.All(f => f.Component != component)) { HostLog.AfterLoadWaitsForSpace(log, job.FullName, detail, (int)DiskFullRetry.TotalSeconds); }
                        services.Health.Fail(component, $"no space left on device ({detail}); the job is run again every {(int)DiskFullRetry.TotalSeconds} s until it succeeds");
                        waitForSpace = true;
                    }
                    catch (SluiceException e)
                    {
                        services.Health.Clear(component);
                        HostLog.AfterLoadRefused(log, job.FullName, e.Message);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        services.Health.Clear(component);
                        HostLog.AfterLoadFailed(log, e, job.FullName);
                    }
                }

                if (waitForSpace)
                {
                    // A signal of its own after the pause: a load meanwhile is coalesced with it.
                    await Task.Delay(DiskFullRetry, _time, ct).ConfigureAwait(false);
                    _signals.Writer.TryWrite(true);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutdown: a job cut short is recorded as interrupted and redone by the next run.
        }
    }
}
