using Microsoft.Extensions.Logging;

namespace Sluice.Connectors.Postgres;

/// <summary>Incremental snapshots and the initial snapshot's resumption (event ids 10300-10399).</summary>
internal static partial class PostgresLog
{
    [LoggerMessage(10300, LogLevel.Information, "Incremental snapshot {Id} of {Table} ({Kind}) started: {Total} rows, {ChunkRows} per chunk")]
    public static partial void SnapshotStarted(ILogger logger, long id, string table, string kind, long total, int chunkRows);

    [LoggerMessage(10301, LogLevel.Information, "Incremental snapshot {Id} of {Table} resumes after key {LastKey} ({Rows} rows read before the stop)")]
    public static partial void SnapshotResumed(ILogger logger, long id, string table, string lastKey, long rows);

    [LoggerMessage(10302, LogLevel.Information, "Incremental snapshot {Id} of {Table} done: {Rows} rows read in {Chunks} chunks, {Superseded} left to newer streamed changes")]
    public static partial void SnapshotDone(ILogger logger, long id, string table, long rows, long chunks, long superseded);

    [LoggerMessage(10303, LogLevel.Error, "Incremental snapshot {Id} of {Table} failed: {Reason}")]
    public static partial void SnapshotFailed(ILogger logger, long id, string table, string reason);

    [LoggerMessage(10304, LogLevel.Warning, "The initial snapshot of slot {Slot} was interrupted before every sink had it: {Done} of {Tables} tables are complete; the rest ({Rest}) is read in incremental snapshots while streaming, from the last committed key, instead of starting over")]
    public static partial void InitialSnapshotResumed(ILogger logger, string slot, int done, int tables, string rest);
}
