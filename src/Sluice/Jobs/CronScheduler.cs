using Cronos;
using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;

namespace Sluice.Jobs;

/// <summary>
/// Fires each scheduled job at its cron times (UTC), as of the scheduled instant. Runs that were missed while the
/// process was down are not caught up (a job's own look-back covers them); a job still running at its next time is
/// not started twice. Time comes from the injected <see cref="TimeProvider"/>, so tests drive it with a fake clock.
/// </summary>
public sealed class CronScheduler(IReadOnlyList<JobDefinition> jobs, Func<JobDefinition, DateTimeOffset, CancellationToken, Task> run, TimeProvider time, ILogger log)
{
    private readonly List<(JobDefinition Job, CronExpression Cron)> _scheduled = jobs
        .Where(j => j.Schedule is not null)
        .Select(j => (j, CronExpression.Parse(j.Schedule!, CronFormat.Standard)))
        .ToList();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset?> _next = new(StringComparer.Ordinal);

    public int Count => _scheduled.Count;

    /// <summary>When this scheduler fires the job next (null: not scheduled here, or not started yet).</summary>
    public DateTimeOffset? NextRunAt(string job) => _next.GetValueOrDefault(job);

    public async Task RunAsync(CancellationToken ct)
    {
        if (_scheduled.Count == 0)
        {
            return;
        }

        var running = new Dictionary<string, Task>(StringComparer.Ordinal);
        var next = _next;
        foreach (var (job, cron) in _scheduled) { next[job.FullName] = cron.GetNextOccurrence(time.GetUtcNow(), TimeZoneInfo.Utc); }
        while (!ct.IsCancellationRequested)
        {
            var soonest = next.Values.Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
            if (soonest == DateTimeOffset.MaxValue)
            {
                return;
            }

            var wait = soonest - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            var now = time.GetUtcNow();
            foreach (var (job, cron) in _scheduled)
            {
                var due = next[job.FullName];
                if (due is null || due > now)
                {
                    continue;
                }

                next[job.FullName] = cron.GetNextOccurrence(now, TimeZoneInfo.Utc);
                if (running.TryGetValue(job.FullName, out var previous) && !previous.IsCompleted)
                {
                    SchedulerLog.StillRunning(log, job.FullName, due.Value);
                    continue;
                }

                running[job.FullName] = RunGuardedAsync(job, due.Value, ct);
            }
        }

        await Task.WhenAll(running.Values).ConfigureAwait(false);
    }

    private Task RunGuardedAsync(JobDefinition job, DateTimeOffset asOf, CancellationToken ct) => Guarded(() => run(job, asOf, ct), job, asOf, log, ct);

    /// <summary>Runs a job the scheduler (or a cluster's take-over) started: a failure is logged, never the scheduler's end.</summary>
    internal static async Task Guarded(Func<Task> run, JobDefinition job, DateTimeOffset asOf, ILogger log, CancellationToken ct)
    {
        try
        {
            await run().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutting down: the run is recorded as interrupted by the runner.
        }
        catch (Core.SluiceException e)
        {
            // A job's own explanation (a server down, bad data) needs no stack trace; it is in job history too.
            SchedulerLog.Refused(log, job.FullName, asOf, e.Message);
        }
        catch (Exception e)
        {
            SchedulerLog.Failed(log, e, job.FullName, asOf);
        }
    }
}

internal static partial class SchedulerLog
{
    [LoggerMessage(2001, LogLevel.Warning, "{Job}: skipped the run due at {Due:o}, the previous run is still going")]
    public static partial void StillRunning(ILogger logger, string job, DateTimeOffset due);

    [LoggerMessage(2002, LogLevel.Error, "{Job}: run as of {AsOf:o} failed")]
    public static partial void Failed(ILogger logger, Exception error, string job, DateTimeOffset asOf);

    [LoggerMessage(2004, LogLevel.Warning, "{Job}: run as of {AsOf:o} failed: {Reason}")]
    public static partial void Refused(ILogger logger, string job, DateTimeOffset asOf, string reason);

    [LoggerMessage(2003, LogLevel.Information, "{Job}: {Message}")]
    public static partial void Ran(ILogger logger, string job, string message);
}
