using Sluice.Connectors.OpenLineage;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;

namespace Sluice.Jobs;

/// <summary>
/// Runs one job: takes the job's cross-process lock (so the scheduler of a running instance and a <c>job run</c> or
/// <c>backfill</c> from the command line never run the same job at once), records the run, and returns its outcome.
/// </summary>
public sealed class JobRunner(IEngineServices services)
{
    /// <summary>How long a second runner of the same job waits for the first (default 10 minutes).</summary>
    public TimeSpan LockWait { get; init; } = TimeSpan.FromMinutes(10);

    public JobRunStore Runs { get; } = new(services.Metadata, services.Time);

    /// <param name="started">Told the run's id in <c>job_runs</c> once the lock is held and the run recorded (the console answers with it).</param>
    public async Task<JobOutcome> RunAsync(JobDefinition job, JobRequest request, CancellationToken ct, Action<long>? started = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        using var held = await ProcessLock.AcquireAsync(LockPath(job), services.Time, LockWait, ct).ConfigureAwait(false);
        var id = Runs.Start(job.FullName, request.AsOf, request.Trigger);
        started?.Invoke(id);
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

            Runs.Finish(id, JobRunStore.Succeeded, outcome.RowsIn, outcome.RowsOut, outcome.Message);
            JobTracing.Finished(span, outcome.RowsIn, outcome.RowsOut);
            EndLineage(lineage, LineageEnd.Complete);
            return outcome;
        }
        catch (OperationCanceledException)
        {
            Runs.Finish(id, JobRunStore.Interrupted, null, null, "cancelled");
            JobTracing.Ended(span, JobRunStore.Interrupted, "cancelled");
            EndLineage(lineage, LineageEnd.Abort);
            throw;
        }
        catch (Exception e)
        {
            Runs.Finish(id, JobRunStore.Failed, null, null, e.Message);
            JobTracing.Ended(span, JobRunStore.Failed, e.Message);
            EndLineage(lineage, LineageEnd.Fail, e.Message);
            throw;
        }
    }

    /// <summary>True when some runner (the scheduler, <c>sluice job run</c>, another process) holds the job's lock now.</summary>
    public bool IsHeld(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        using var probe = ProcessLock.TryAcquire(LockPath(job));
        return probe is null;
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
