using Microsoft.Extensions.Logging;

namespace Sluice.Connectors.Files;

internal static partial class FilesLog
{
    [LoggerMessage(1001, LogLevel.Information, "{File}: {Rows} rows landed in {Table} ({Partitions} partitions, {Quarantined} records quarantined)")]
    public static partial void Landed(ILogger logger, string file, long rows, string table, int partitions, long quarantined);

    [LoggerMessage(1002, LogLevel.Information, "{File}: same content as a file ingested before, nothing landed again")]
    public static partial void Duplicate(ILogger logger, string file);

    [LoggerMessage(1003, LogLevel.Warning, "{File} moved to failed/: {Reason}")]
    public static partial void Failed(ILogger logger, string file, string reason);

    [LoggerMessage(1004, LogLevel.Information, "{File}: committed before a restart, moved to processed/")]
    public static partial void Recovered(ILogger logger, string file);

    [LoggerMessage(1005, LogLevel.Information, "{File}: claimed before a restart, ingesting it again")]
    public static partial void Resumed(ILogger logger, string file);

    [LoggerMessage(1006, LogLevel.Error, "{File}: ingest failed unexpectedly, left in processing/ for the next attempt")]
    public static partial void Crashed(ILogger logger, Exception error, string file);

    [LoggerMessage(1007, LogLevel.Information, "Shutting down: {Count} files still being ingested did not finish in time and stay in processing/ for the next start")]
    public static partial void Abandoned(ILogger logger, int count);

    [LoggerMessage(9501, LogLevel.Warning, "{Count} files in failed/ had no dead letter (a kill between the move and the letter); recorded them")]
    public static partial void LetteredAgain(ILogger logger, int count);

    [LoggerMessage(25700, LogLevel.Information, "{File}: its claim by {Worker} expired (the worker stopped renewing it); ingesting it here")]
    public static partial void ClaimTakenOver(ILogger logger, string file, string worker);

    [LoggerMessage(25701, LogLevel.Warning, "The leases of {Count} claimed files could not be renewed in the shared metadata store; another worker takes them over if this lasts past the lease")]
    public static partial void LeaseNotRenewed(ILogger logger, Exception error, int count);
}
