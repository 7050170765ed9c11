using Sluice.Jobs;

namespace Sluice.Alerts.Conditions;

/// <summary>
/// <c>job_failed</c>: fires while the job's last finished run failed (or was interrupted: its process died), from
/// whichever process ran it (the schedule, after a load, <c>sluice job run</c>); resolves with the next run that succeeds.
/// </summary>
public sealed class JobFailedCondition(string job) : AlertCondition
{
    public override string Kind => "job_failed";

    public override string Subject => $"job {job}";

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var last = facts.RecentRuns(job).FirstOrDefault(r => r.Status != JobRunStore.Running);
        if (last is null)
        {
            return new AlertCheck(false, $"job {job}: no finished run yet");
        }

        return last.Status == JobRunStore.Succeeded
            ? new AlertCheck(false, $"job {job}: last run succeeded at {Time(last.EndedAt ?? last.StartedAt)}")
            : new AlertCheck(true, $"job {job}: last run {last.Status} at {Time(last.EndedAt ?? last.StartedAt)}: {last.Message ?? "no message"}");
    }
}
