using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.OpenLineage;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;

namespace Sluice.Jobs;

/// <summary>
/// Runs one job: takes the job's cross-process lock (so the scheduler of a running instance and a <c>job run</c> or
/// <c>backfill</c> from the command line never run the same job at once), records the run, and returns its outcome.
/// On a cluster's shared metadata store the run also holds the job's lease (<see cref="JobLeases"/>), renewed while it
/// goes, so one runner per job runs across every machine; a run whose lease is lost is cancelled and its end refused.
/// </summary>
public sealed class JobRunner
{
    private readonly IEngineServices services;
    private readonly ILogger _log;

    public JobRunner(IEngineServices services, ILogger? log = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        this.services = services;
        _log = log ?? NullLogger.Instance;
        Runs = new JobRunStore(services.Metadata, services.Time);
        Leases = services.Metadata.Shared is null ? null
            : new JobLeases(services.Metadata, services.Time, JobLeases.TtlFromEnvironment(Environment.GetEnvironmentVariable));
    }

    /// <summary>How long a second runner of the same job waits for the first (default 10 minutes).</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromMinutes(10);

    public JobRunStore Runs { get; }

    /// <summary>The job leases of the cluster's shared store; null on a data folder's own store (one process runs its jobs).</summary>
    public JobLeases? Leases { get; }

    /// <param name="started">Told the run's id in <c>job_runs</c> once the lock is held and the run recorded (the console answers with it).</param>
    /// <param name="claimed">A run already started with its lease (a scheduled slot, a re-run): run under it instead of starting one.</param>
    public async Task<JobOutcome> RunAsync(JobDefinition job, JobRequest request, CancellationToken ct, Action<long>? started = null, JobLease? claimed = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        using var held = await ProcessLock.AcquireAsync(LockPath(job), services.Time, LockWait, ct).ConfigureAwait(false);
        if (Leases is null)
        {
            var id = Runs.Start(job.FullName, request.AsOf, request.Trigger);
            started?.Invoke(id);
            return await ExecuteAsync(job, request, id, (status, rowsIn, rowsOut, message) => Runs.Finish(id, status, rowsIn, rowsOut, message), ct).ConfigureAwait(false);
        }

        var lease = claimed ?? await Leases.StartAsync(Runs, job.FullName, request.AsOf, request.Trigger, LockWait, ct).ConfigureAwait(false);
        started?.Invoke(lease.RunId);
        // A worker shows the job's lease among what it holds while the run goes (status --cluster, the console).
        var holding = $"{job.FullName} (run {lease.RunId})";
        services.Worker?.Hold("jobs", holding);
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var stopRenewing = new CancellationTokenSource();
        var renewing = RenewAsync(lease, lost, stopRenewing.Token);
        using var fence = JobFence.Enter(() => Leases.Fence(lease));
        try
        {
            return await ExecuteAsync(job, request, lease.RunId, (status, rowsIn, rowsOut, message) =>
            {
                if (!Leases.Finish(lease, status, rowsIn, rowsOut, message)) { throw new JobLeaseLostException(lease); }
            }, lost.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new JobLeaseLostException(lease);
        }
        finally
        {
            await stopRenewing.CancelAsync().ConfigureAwait(false);
            await renewing.ConfigureAwait(false);
            services.Worker?.Release("jobs", holding);
        }
    }

    /// <summary>
    /// Starts a scheduled slot's run once across the cluster and runs it; null when another process took the slot (or a
    /// run of the job still holds its lease). Without a shared store every slot is this process's.
    /// </summary>
    public async Task<JobOutcome?> RunSlotAsync(JobDefinition job, DateTimeOffset asOf, Func<JobLease?, Task<JobOutcome>> run)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(run);
        if (Leases is null) { return await run(null).ConfigureAwait(false); }
        if (Leases.StartSlot(Runs, job.FullName, asOf) is not { } lease)
        {
            JobLeaseLog.SlotTakenElsewhere(_log, job.FullName, asOf);
            return null;
        }

        return await run(lease).ConfigureAwait(false);
    }

    /// <summary>Renews the lease every third of its time; on losing it cancels the run (<paramref name="lost"/>).</summary>
    private async Task RenewAsync(JobLease lease, CancellationTokenSource lost, CancellationToken stop)
    {
        var every = Leases!.Ttl / 3;
        var lastRenewed = services.Time.GetUtcNow();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, services.Time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            bool renewed;
            try
            {
                renewed = Leases.Renew(lease);
                if (renewed) { lastRenewed = services.Time.GetUtcNow(); }
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
            {
                // The store unreachable for a moment: the lease stands until it expires; past that another may take it.
                JobLeaseLog.RenewFailed(_log, lease.Job, lease.RunId, e.Message);
                renewed = services.Time.GetUtcNow() - lastRenewed < Leases.Ttl;
            }

            if (!renewed)
            {
                JobLeaseLog.Lost(_log, lease.Job, lease.RunId, lease.Token);
                await lost.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    private async Task<JobOutcome> ExecuteAsync(JobDefinition job, JobRequest request, long id, Action<string, long?, long?, string?> finish, CancellationToken ct)
    {
        using var span = JobTracing.Job(job, id, request);
        var lineage = StartLineage(job);
        // Rows a job sends through sinks may end in the dead-letter store (bounded retries): its summary says so.
        using var letters = DeadLetterTally.Begin();
        try
        {
            var outcome = await job.Factory.Create(services).RunAsync(request, ct).ConfigureAwait(false);
            if (letters.Describe() is { } lettered)
            {
                outcome = outcome with { Message = $"{outcome.Message}; {lettered} went to the dead-letter store (sluice dlq list)" };
            }

            finish(JobRunStore.Succeeded, outcome.RowsIn, outcome.RowsOut, outcome.Message);
            JobTracing.Finished(span, outcome.RowsIn, outcome.RowsOut);
            EndLineage(lineage, LineageEnd.Complete);
            return outcome;
        }
        catch (JobLeaseLostException e)
        {
            // The run that took the job over owns its record now: nothing more is written for this one.
            JobTracing.Ended(span, JobRunStore.Interrupted, e.Message);
            EndLineage(lineage, LineageEnd.Abort);
            throw;
        }
        catch (OperationCanceledException)
        {
            TryFinish(finish, JobRunStore.Interrupted, "cancelled");
            JobTracing.Ended(span, JobRunStore.Interrupted, "cancelled");
            EndLineage(lineage, LineageEnd.Abort);
            throw;
        }
        catch (Exception e)
        {
            TryFinish(finish, JobRunStore.Failed, e.Message);
            JobTracing.Ended(span, JobRunStore.Failed, e.Message);
            EndLineage(lineage, LineageEnd.Fail, e.Message);
            throw;
        }
    }

    /// <summary>Records a failed or cancelled end; a lease lost meanwhile leaves the record to the run that takes over.</summary>
    private static void TryFinish(Action<string, long?, long?, string?> finish, string status, string message)
    {
        try
        {
            finish(status, null, null, message);
        }
        catch (Exception e) when (e is JobLeaseLostException or System.Data.Common.DbException)
        {
            // Taken over, or the store out of reach: the run that takes the job over marks this one interrupted.
        }
    }

    /// <summary>True when some runner (the scheduler, <c>sluice job run</c>, another process) holds the job's lock now.</summary>
    public bool IsHeld(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        using var probe = ProcessLock.TryAcquire(LockPath(job));
        return probe is null || Leases?.HolderOf(job.FullName) is not null;
    }

    private string LockPath(JobDefinition job) => LockFile(services.Data, job.Recipe, job.Name);

    /// <summary>The file every runner of a job locks (also <c>models run --select</c>, <c>models build</c>, <c>models release</c>).</summary>
    public static string LockFile(DataDirectory data, string recipe, string job)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Path.Combine(data.LocksRoot, $"job-{recipe}-{job}.lock");
    }

    private LineageRun? StartLineage(JobDefinition job)
    {
        if (services.Lineage is not { } lineage)
        {
            return null;
        }

        // A job that does not name its tables still shows as a run (without datasets).
        var (inputs, outputs) = job.Factory is ILineageTables tables ? tables.LineageTables(lineage) : ([], []);
        return lineage.Start(job.FullName, inputs, outputs);
    }

    private void EndLineage(LineageRun? run, LineageEnd end, string? error = null)
    {
        if (run is not null)
        {
            services.Lineage?.End(run, end, error);
        }
    }
}
