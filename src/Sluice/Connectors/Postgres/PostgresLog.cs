using Microsoft.Extensions.Logging;

namespace Sluice.Connectors.Postgres;

internal static partial class PostgresLog
{
    [LoggerMessage(5001, LogLevel.Information, "Created publication {Publication} for {Tables}")]
    public static partial void PublicationCreated(ILogger logger, string publication, string tables);

    [LoggerMessage(5002, LogLevel.Information, "Created replication slot {Slot} at {Lsn}")]
    public static partial void SlotCreated(ILogger logger, string slot, string lsn);

    [LoggerMessage(5003, LogLevel.Information, "Initial snapshot of {Table}: {Rows} rows")]
    public static partial void SnapshotRead(ILogger logger, string table, long rows);

    [LoggerMessage(5004, LogLevel.Warning, "Table {Table} has no usable replica identity ({Why}): while it is in the publication, Postgres rejects UPDATE and DELETE on it; add a primary key or run ALTER TABLE {Table} REPLICA IDENTITY FULL")]
    public static partial void NoReplicaIdentity(ILogger logger, string table, string why);

    [LoggerMessage(5005, LogLevel.Information, "Replication slot {Slot} is still held by server process {Pid} (a predecessor that stopped a moment ago?); waiting for it")]
    public static partial void SlotBusy(ILogger logger, string slot, int pid);

    [LoggerMessage(5006, LogLevel.Information, "Streaming {Slot} from {Lsn}")]
    public static partial void Streaming(ILogger logger, string slot, string lsn);

    [LoggerMessage(5007, LogLevel.Warning, "Re-taking the initial snapshot: the previous one ({Slot}) did not reach every sink before the last stop")]
    public static partial void SnapshotRedo(ILogger logger, string slot);

    [LoggerMessage(5008, LogLevel.Warning, "{Table} at {Lsn}: column {Column} value is not a {Type}; the row is dead-lettered")]
    public static partial void BadValue(ILogger logger, string table, string lsn, string column, string type);

    [LoggerMessage(5009, LogLevel.Information, "{Table}: TRUNCATE at {Lsn} goes downstream as a change (_op = t)")]
    public static partial void Truncate(ILogger logger, string table, string lsn);

    [LoggerMessage(5010, LogLevel.Warning, "Replication connection lost ({Reason}); reconnecting in {Delay} ms from the last confirmed position")]
    public static partial void Reconnecting(ILogger logger, string reason, long delay);

    [LoggerMessage(9800, LogLevel.Information, "Tables added to the recipe after the first start: {Tables}; read their {Rows} existing rows in a snapshot at {Lsn}, delivered before the changes committed after it")]
    public static partial void TablesAdded(ILogger logger, string tables, long rows, string lsn);

    [LoggerMessage(9801, LogLevel.Warning, "Tables added to the recipe after the first start: {Tables}; snapshot is false, so only their changes from now on are streamed, not their existing rows")]
    public static partial void TablesAddedNoSnapshot(ILogger logger, string tables);

    [LoggerMessage(9900, LogLevel.Warning, "Replication slot {Slot} is falling behind: {Reason}")]
    public static partial void SlotLagging(ILogger logger, string slot, string reason);

    [LoggerMessage(9901, LogLevel.Warning, "Replication slot {Slot} caught up again (lag {LagBytes} bytes, {LagSeconds:0.#} s)")]
    public static partial void SlotLagCleared(ILogger logger, string slot, long lagBytes, double lagSeconds);

    [LoggerMessage(9902, LogLevel.Error, "Replication slot {Slot} is about to lose WAL it needs: {Reason}")]
    public static partial void SlotWalAtRisk(ILogger logger, string slot, string reason);

    [LoggerMessage(9903, LogLevel.Warning, "Replication slot {Slot} no longer risks losing WAL (wal_status {WalStatus})")]
    public static partial void SlotWalSafe(ILogger logger, string slot, string walStatus);

    [LoggerMessage(9904, LogLevel.Warning, "Checking replication slot {Slot} failed ({Reason}); trying again at the next check")]
    public static partial void SlotCheckFailed(ILogger logger, string slot, string reason);

    [LoggerMessage(10000, LogLevel.Warning, "Replication slot {Slot}: its idle position cannot be recorded, no space left on device ({Detail}); the slot is not advanced until it can be")]
    public static partial void IdleAdvanceWaits(ILogger logger, string slot, string detail);

    [LoggerMessage(27850, LogLevel.Warning, "The snapshot is taken again: {Tables} tables go downstream as truncated at {Lsn} first, so no sink keeps rows of the slot given up that the source has since deleted")]
    public static partial void SnapshotTruncates(ILogger logger, int tables, string lsn);

    [LoggerMessage(27800, LogLevel.Information, "Replication slot {Slot}: this worker ({Worker}) holds its lock and reads it")]
    public static partial void SlotLeaseTaken(ILogger logger, string slot, string worker);

    [LoggerMessage(27801, LogLevel.Information, "Replication slot {Slot}: standing by, {State}")]
    public static partial void SlotLeaseWaiting(ILogger logger, string slot, string state);

    [LoggerMessage(27802, LogLevel.Warning, "Replication slot {Slot}: the session holding its lock failed ({Reason}); this worker stops reading it and stands by")]
    public static partial void SlotLeaseLost(ILogger logger, string slot, string reason);

    [LoggerMessage(27803, LogLevel.Warning, "Replication slot {Slot} was still read by server process {Pid}, whose worker no longer holds the lock (cut off from the server?); ended it before reading")]
    public static partial void SlotReaderFenced(ILogger logger, string slot, int pid);

    [LoggerMessage(27650, LogLevel.Information, "Job {Job}: resuming backfill {Backfill} ({From} to {To}) after key {After}, where its last run left it, unfinished ({Rows} rows published)")]
    public static partial void BackfillResumed(ILogger logger, string job, string backfill, string from, string to, string after, long rows);

    [LoggerMessage(27651, LogLevel.Warning, "JetStream stream {JetStream} did not store a backfill page ({Reason}): attempt {Attempt} of {Attempts}; publishing it again in {Seconds} s")]
    public static partial void BackfillPageNotStored(ILogger logger, string jetStream, string reason, int attempt, int attempts, int seconds);

    [LoggerMessage(27700, LogLevel.Warning, "Replication slot {Slot}: creating it has waited {Seconds} s for transactions running on the server to end (PostgreSQL creates a logical slot only once every transaction that had written when the creation began is over, in any database): {Holders}. The pipeline waits until they commit or roll back, or until their sessions are ended (SELECT pg_terminate_backend(pid))")]
    public static partial void SlotCreationWaits(ILogger logger, string slot, int seconds, string holders);
}
