using Microsoft.Extensions.Logging;

namespace Sluice.Connectors.OpenLineage;

internal static partial class OpenLineageLog
{
    [LoggerMessage(10800, LogLevel.Information, "OpenLineage: sending run events to {Endpoint} (namespace {Namespace})")]
    public static partial void Enabled(ILogger logger, string endpoint, string @namespace);

    [LoggerMessage(10801, LogLevel.Warning, "OpenLineage: {EventType} event of {Job} run {RunId} dropped after {Attempts} attempt(s) to {Endpoint}: {Reason}")]
    public static partial void Dropped(ILogger logger, string eventType, string job, Guid runId, int attempts, string endpoint, string reason);

    [LoggerMessage(10802, LogLevel.Warning, "OpenLineage: queue full ({Capacity} events waiting for {Endpoint}), {EventType} event of {Job} dropped")]
    public static partial void QueueFull(ILogger logger, int capacity, string endpoint, string eventType, string job);

    [LoggerMessage(10803, LogLevel.Debug, "OpenLineage: attempt {Attempt} to send an event failed ({Reason}); retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, int attempt, string reason, long delayMs);

    [LoggerMessage(10804, LogLevel.Warning, "OpenLineage: {Count} event(s) still queued for {Endpoint} when the process stopped; dropped")]
    public static partial void Abandoned(ILogger logger, int count, string endpoint);
}
