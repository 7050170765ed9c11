using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;

namespace Sluice.Jobs;

/// <summary>
/// On a cluster, every worker looks for runs of its recipe's jobs whose runner died (its lease expired): the first to
/// look marks such a run <c>interrupted</c> and, when it was a scheduled slot's run or one of a job that resumes its own
/// progress (<see cref="IResumableJob"/>: a cluster's backfill), re-runs it here (a few times at most: <see cref="JobLeases.MaxReruns"/>).
/// Looks when it starts, then every third of the lease time, on the injected clock.
/// </summary>
public sealed class JobTakeover(JobRunner runner, IReadOnlyList<JobDefinition> jobs, Func<JobDefinition, JobLease, CancellationToken, Task> rerun, TimeProvider time, ILogger log)
{
    public async Task RunAsync(CancellationToken ct)
    {
        if (runner.Leases is not { } leases || jobs.Count == 0) { return; }
        var byName = jobs.ToDictionary(j => j.FullName, StringComparer.Ordinal);
        var names = byName.Keys.ToHashSet(StringComparer.Ordinal);
        var resumable = jobs.Where(j => j.Factory is IResumableJob).Select(j => j.FullName).ToHashSet(StringComparer.Ordinal);
        var running = new List<Task>();
        // The first look comes at once: a worker that starts after a runner died (the only worker left, or the first
        // back) re-runs its slot before its scheduler's next slot could take the expired lease and leave it unrerun.
        for (var first = true; !ct.IsCancellationRequested; first = false)
        {
            try
            {
                // The first look off the caller's thread too: the host starts its components one after another.
                if (first) { await Task.Yield(); }
                else { await Task.Delay(leases.Ttl / 3, time, ct).ConfigureAwait(false); }
            }
            catch (OperationCanceledException)
            {
                break;
            }

            IReadOnlyList<JobLease> taken;
            try
            {
                taken = leases.TakeOverExpired(runner.Runs, names, resumable, (run, times) => JobLeaseLog.RerunsExhausted(log, run.Job, run.AsOf, times, run.RunId));
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
            {
                JobLeaseLog.TakeOverFailed(log, e.Message);
                continue;
            }

            foreach (var lease in taken)
            {
                JobLeaseLog.Rerun(log, lease.Job, lease.AsOf, lease.RunId);
                var job = byName[lease.Job];
                running.Add(CronScheduler.Guarded(() => rerun(job, lease, ct), job, lease.AsOf, log, ct));
            }

            running.RemoveAll(t => t.IsCompleted);
        }

        await Task.WhenAll(running).ConfigureAwait(false);
    }
}
