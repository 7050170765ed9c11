using Cronos;

namespace Sluice.Alerts.Conditions;

/// <summary>
/// <c>job_late</c>: fires when a scheduled job has not started by its scheduled time plus <see cref="Grace"/> (its
/// process was down at that time, or the run before it still held the job). Due times count from the job's last
/// start, or from when the alert was set up; resolves once a run starts.
/// </summary>
public sealed class JobLateCondition(string job, string schedule, TimeSpan grace) : AlertCondition
{
    private readonly CronExpression _cron = CronExpression.Parse(schedule, CronFormat.Standard);

    public override string Kind => "job_late";

    public override string Subject => $"job {job}";

    public TimeSpan Grace => grace;

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var runs = facts.RecentRuns(job);
        DateTimeOffset? lastStart = runs.Count > 0 ? runs[0].StartedAt : null;
        var from = lastStart is { } s && s > watchedSince ? s : watchedSince;
        var due = _cron.GetNextOccurrence(from.UtcDateTime, TimeZoneInfo.Utc);
        var last = lastStart is { } l ? $"last run started {Time(l)}" : "no run yet";
        if (due is { } d && now > new DateTimeOffset(d) + grace)
        {
            return new AlertCheck(true, $"job {job}: due at {Time(d)} (schedule '{schedule}'), not started within {Ago(grace)}; {last}");
        }

        return new AlertCheck(false, $"job {job}: next due {(due is { } n ? Time(n) : "never")}; {last}");
    }
}
