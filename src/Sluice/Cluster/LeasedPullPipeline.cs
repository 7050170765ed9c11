using Microsoft.Extensions.Logging;
using Sluice.Connectors.Pull;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Status;

namespace Sluice.Cluster;

/// <summary>
/// A pull pipeline (<c>postgres_pull</c> or <c>salesforce</c>, with sinks, or with a <c>mapping:</c> that lands in a
/// shared store) on a worker of a cluster: every worker runs it, only the one holding the pull's lease pulls. The lease
/// is a one-partition lease of <see cref="PartitionLeases"/> (stream <c>pull:&lt;recipe&gt;/&lt;pipeline&gt;</c>), so it
/// has the same owner, expiry and fencing token as a stream's partitions and no table of its own. The holder renews it
/// every third of <c>SLUICE_CLUSTER_LEASE</c>; the others try to take it every second and stand by, green, with
/// "stand-by for the pull" as the pipeline's condition. On taking it a worker builds the pipeline afresh: the pull's
/// cursor (its watermark and the pages handed on and not yet committed by every sink, <c>Connectors/Pull/PulledPages</c>;
/// a mapped pull's watermark in its store) and the sinks' checkpoints are in the shared store as the last holder left
/// them, so it hands the same pages on at the same positions and pulls on from the watermark. Each page is written
/// only while the lease is still this worker's (<see cref="PullLeaseFence"/>): a holder paused past its lease that
/// resumes after a take-over writes nothing, says so, and stands by again.
/// </summary>
public sealed class LeasedPullPipeline : IRunnableSource, IStatusSource
{
    private readonly PipelineDefinition _definition;
    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly ILogger _log;
    private PipelineStatus? _status;

    public LeasedPullPipeline(PipelineDefinition definition, IEngineServices services, string recipe)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(services);
        _definition = definition;
        _services = services;
        _recipe = recipe;
        _log = services.Logging.CreateLogger("Sluice.Cluster");
    }

    /// <summary>The pipelines a cluster runs under a pull lease: every pull source, handing its rows to sinks or landing them itself (<c>mapping:</c>).</summary>
    public static bool Leased(PipelineDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        return definition.Source is IPullSourceFactory pull && (pull.Mapping is not null || definition.Sinks.Count > 0);
    }

    /// <summary>The lease's name in <c>partition_leases</c>.</summary>
    public static string LeaseName(string recipe, string pipeline) => $"pull:{recipe}/{pipeline}";

    TimeSpan IRunnableSource.DrainTimeout => StreamPipeline.DrainTimeout;

    public void AttachStatus(PipelineStatus status) => _status = status;

    public Task<int> RunOnceAsync(CancellationToken ct) =>
        throw new Core.SluiceException("run --once does not take --cluster: a cluster's pipelines run until stopped");

    public async Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        var worker = _services.Worker?.Worker.Id ?? WorkerIdentity.Of(_services.Data, Environment.GetEnvironmentVariable);
        var leases = new PartitionLeases(_services.Metadata, LeaseName(_recipe, _definition.Name), worker, 1,
            PartitionLeases.DurationFrom(Environment.GetEnvironmentVariable), _services.Time);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                PartitionLease lease;
                try
                {
                    lease = await TakeAsync(leases, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }

                PullLeaseLog.Taken(_log, leases.Stream, lease.Token);
                var item = $"{_recipe}/{_definition.Name}";
                _services.Worker?.Hold("pulls", item);
                bool lost;
                try
                {
                    lost = await PullAsync(leases, lease, afterLoad, ct).ConfigureAwait(false);
                }
                finally
                {
                    _services.Worker?.Release("pulls", item);
                }

                if (!lost) { return; }
                PullLeaseLog.Lost(_log, leases.Stream, lease.Token);
            }
        }
        finally
        {
            Leave(leases);
        }
    }

    /// <summary>Waits for the lease, trying every second (a store outage is a warning and the next try).</summary>
    private async Task<PartitionLease> TakeAsync(PartitionLeases leases, CancellationToken ct)
    {
        var every = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, leases.Duration.Ticks / 3));
        while (true)
        {
            try
            {
                if (leases.TryTake(0) is { } taken)
                {
                    _status?.Condition(null);
                    return taken;
                }

                var holder = leases.Rows() is [var row, ..] ? row.Owner : null;
                _status?.Condition($"stand-by for the pull (held by {holder ?? "a worker that is letting it go"})");
            }
            catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException && !ct.IsCancellationRequested)
            {
                PullLeaseLog.NotRenewed(_log, leases.Stream, e.Message);
            }

            await Task.Delay(every, _services.Time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the pipeline while the lease is held; true when it ended because the lease was lost (stand by again).</summary>
    private async Task<bool> PullAsync(PartitionLeases leases, PartitionLease lease, Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        using var lost = new CancellationTokenSource();
        using var run = CancellationTokenSource.CreateLinkedTokenSource(ct, lost.Token);
        var keeping = KeepAsync(leases, lease, lost, run.Token);
        try
        {
            // Built only now: the cursor and checkpoints it starts from are the ones the previous holder committed.
            var pipeline = _definition.Create(new PullFencedServices(_services, new PullLeaseFence(_services.Metadata, leases, lease)), _recipe);
            await using (pipeline.ConfigureAwait(false))
            {
                if (_status is not null) { (pipeline as IStatusSource)?.AttachStatus(_status); }
                try
                {
                    await pipeline.RunAsync(afterLoad, run.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (run.IsCancellationRequested)
                {
                    // A stop, or the lease lost.
                }
                catch (PullFencedException e)
                {
                    // Paused past the lease and resumed after another worker took the pull over: its page wrote nothing.
                    PullLeaseLog.Fenced(_log, leases.Stream, lease.Token, e.Message);
                    await lost.CancelAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await run.CancelAsync().ConfigureAwait(false);
            await keeping.ConfigureAwait(false);
        }

        if (lost.IsCancellationRequested) { return true; }
        try
        {
            // A clean stop: the pull's next holder need not wait for the lease to expire.
            leases.Release(lease);
        }
        catch (System.Data.Common.DbException e)
        {
            PullLeaseLog.NotRenewed(_log, leases.Stream, e.Message);
        }

        return false;
    }

    /// <summary>Renews the lease every third of its time; cancels <paramref name="lost"/> once it is another's, or unrenewed for its whole duration.</summary>
    private async Task KeepAsync(PartitionLeases leases, PartitionLease lease, CancellationTokenSource lost, CancellationToken ct)
    {
        var renewedAt = _services.Time.GetUtcNow();
        try
        {
            while (true)
            {
                await Task.Delay(leases.Duration / 3, _services.Time, ct).ConfigureAwait(false);
                try
                {
                    if (!leases.Renew().Contains(lease))
                    {
                        await lost.CancelAsync().ConfigureAwait(false);
                        return;
                    }

                    renewedAt = _services.Time.GetUtcNow();
                }
                catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException)
                {
                    PullLeaseLog.NotRenewed(_log, leases.Stream, e.Message);
                    if (_services.Time.GetUtcNow() - renewedAt >= leases.Duration)
                    {
                        // Unrenewed this long, another worker may hold it now: stop pulling.
                        await lost.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the pipeline ended
        }
    }

    private void Leave(PartitionLeases leases)
    {
        try
        {
            leases.Leave();
        }
        catch (System.Data.Common.DbException e)
        {
            PullLeaseLog.NotRenewed(_log, leases.Stream, e.Message);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal static partial class PullLeaseLog
{
    [LoggerMessage(44400, LogLevel.Information, "{Lease}: this worker took the pull's lease (token {Token}) and pulls from the shared cursor")]
    public static partial void Taken(ILogger logger, string lease, long token);

    [LoggerMessage(44401, LogLevel.Warning, "{Lease}: this worker lost the pull's lease (token {Token}) and stopped pulling; standing by to take it again")]
    public static partial void Lost(ILogger logger, string lease, long token);

    [LoggerMessage(44940, LogLevel.Warning, "{Lease}: a page was refused, the pull's lease (token {Token}) being another worker's now ({Reason}); this worker was paused or cut off past the lease")]
    public static partial void Fenced(ILogger logger, string lease, long token, string reason);

    [LoggerMessage(44402, LogLevel.Warning, "{Lease}: the pull's lease could not be taken or renewed ({Reason}); trying again")]
    public static partial void NotRenewed(ILogger logger, string lease, string reason);
}
