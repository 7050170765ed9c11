using Microsoft.Extensions.Logging;

namespace Sluice.Jobs;

internal static partial class JobLeaseLog
{
    [LoggerMessage(22700, LogLevel.Debug, "{Job}: the slot as of {AsOf:o} is another worker's (or a run of the job holds its lease still)")]
    public static partial void SlotTakenElsewhere(ILogger logger, string job, DateTimeOffset asOf);

    [LoggerMessage(22701, LogLevel.Warning, "{Job}: run {RunId} could not renew its lease: {Reason}; it keeps running until the lease would expire")]
    public static partial void RenewFailed(ILogger logger, string job, long runId, string reason);

    [LoggerMessage(22702, LogLevel.Error, "{Job}: run {RunId} lost its lease (token {Token}) to another run; it is cancelled and writes nothing more")]
    public static partial void Lost(ILogger logger, string job, long runId, long token);

    [LoggerMessage(22703, LogLevel.Warning, "{Job}: the run as of {AsOf:o} was interrupted (its runner stopped renewing the job's lease); run {RunId} here redoes it")]
    public static partial void Rerun(ILogger logger, string job, DateTimeOffset asOf, long runId);

    [LoggerMessage(22705, LogLevel.Error, "{Job}: the run as of {AsOf:o} was interrupted {Times} times in a row (each runner died or was cut off); run {RunId} is left interrupted, not re-run again: find the cause, then run it by hand")]
    public static partial void RerunsExhausted(ILogger logger, string job, DateTimeOffset asOf, int times, long runId);

    [LoggerMessage(22704, LogLevel.Warning, "jobs: looking for runs whose runner died failed: {Reason}; trying again")]
    public static partial void TakeOverFailed(ILogger logger, string reason);
}
