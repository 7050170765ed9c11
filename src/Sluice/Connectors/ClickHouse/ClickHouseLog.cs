using Microsoft.Extensions.Logging;

namespace Sluice.Connectors.ClickHouse;

internal static partial class ClickHouseLog
{
    [LoggerMessage(6001, LogLevel.Warning, "ClickHouse write to {Table} failed ({Reason}); attempt {Attempt}, retrying in {Delay} ms")]
    public static partial void Retrying(ILogger logger, string table, string reason, int attempt, long delay);

    [LoggerMessage(6002, LogLevel.Information, "ClickHouse {Table}: created (or found) with columns {Columns}")]
    public static partial void TableReady(ILogger logger, string table, string columns);

    [LoggerMessage(6003, LogLevel.Information, "ClickHouse {Table}: added column {Column}")]
    public static partial void ColumnAdded(ILogger logger, string table, string column);

    [LoggerMessage(6004, LogLevel.Information, "ClickHouse write to {Table} succeeded after {Attempts} attempts")]
    public static partial void Recovered(ILogger logger, string table, int attempts);

    [LoggerMessage(28000, LogLevel.Information, "ClickHouse mirror {Table}: removing the {Flagged} flagged rows below the low-water mark {Mark} and the older rows of their keys (a mutation, in the background)")]
    public static partial void PruningFlagged(ILogger logger, string table, long flagged, long mark);

    [LoggerMessage(28001, LogLevel.Warning, "ClickHouse mirror {Table}: its flagged rows below the low-water mark were not removed ({Reason}); they stay until the next prune, which tries again")]
    public static partial void PruneFailed(ILogger logger, string table, string reason);
}
