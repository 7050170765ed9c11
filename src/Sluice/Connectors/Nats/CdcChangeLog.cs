using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Microsoft.Extensions.Logging;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Nats;

/// <summary>
/// A <c>postgres_cdc</c> pipeline's changes in JetStream (<c>SLUICE_CLUSTER_CDC=jetstream</c>): the slot's holder
/// publishes each change as one message (<see cref="ChangeMessages"/>) to the stream <c>SLUICE_&lt;cluster&gt;_&lt;recipe&gt;_cdc_&lt;pipeline&gt;</c>,
/// and every worker's steps and sinks read it as the http source's cluster pipelines do (<see cref="ClusterHttpSource"/>).
/// </summary>
/// <remarks>
/// A change's subject is its partition: a hash of its table and key, so one key's changes are in one partition in
/// the order of the WAL. A table a mirror sink keeps by key is partitioned by its table alone: a mirror applies a
/// truncate to the whole table and remembers the last position it applied per table, so every change of that table
/// must reach it in order, the truncate with the rows around it. A change's <c>Nats-Msg-Id</c> is its slot and
/// position (<c>_lsn</c>, <c>_seq</c>: unique in the slot's stream), so what a new holder publishes again after a
/// take-over (from the slot's confirmed position) is stored once. Rows of a snapshot (<c>_op</c> = r) have no such
/// position (a chunk read again enters the stream at a new one): their id is the snapshot's name
/// (<see cref="RecordBatch.Snapshots"/>) and a hash of the table and the row's key, so the rows a new holder reads
/// again of the snapshot its predecessor was publishing are stored once, and a later snapshot of the same table (another
/// name) is stored whole. A row of a table without a key is named by its place in the batch instead, which only a
/// batch published again by the same holder repeats (such a table's snapshot is never resumed, only taken again).
/// Each message also carries the relay's low-water mark when it was published (<see cref="RecordBatch.SettledBelow"/>:
/// every change below it is stored already), from which the consuming workers prove theirs (<see cref="SettledChanges"/>).
/// </remarks>
internal sealed class CdcChangeLog : IAsyncDisposable
{
    /// <summary>How long JetStream remembers a change's id: a re-publish after a take-over comes within seconds; JetStream keeps every id of the window in memory.</summary>
    public static readonly TimeSpan DedupWindow = TimeSpan.FromMinutes(10);

    private readonly ClusterOptions _cluster;
    private readonly string _slot;
    private readonly Func<string, bool> _byTable;

    /// <param name="byTable">Whether a table's changes are partitioned by the table alone (a mirror sink keeps it).</param>
    /// <param name="logging">The host's loggers, for the NATS client's own messages.</param>
    public CdcChangeLog(ClusterOptions cluster, string recipe, string pipeline, string slot, int batchRows, TimeSpan batchLinger, Func<string, bool> byTable, ILoggerFactory? logging = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        _cluster = cluster;
        _slot = slot;
        _byTable = byTable;
        Options = new HttpIngestOptions
        {
            Stream = "cdc_" + pipeline,
            DedupWindow = DedupWindow,
            BatchMaxEvents = batchRows,
            BatchLinger = batchLinger,
        };
        Log = new JetStreamLog(cluster, recipe, Options, logging);
    }

    /// <summary>The stream as the consuming side reads it (its name, batch size and linger).</summary>
    public HttpIngestOptions Options { get; }

    public JetStreamLog Log { get; }

    /// <summary>The batch's changes as messages: partition, id, body.</summary>
    /// <param name="idOf">The id of a row that is no change of the slot (a backfill's page, <see cref="BackfillLog"/>); null: the slot's ids.</param>
    public List<(int Partition, string? MsgId, byte[] Data)> Messages(RecordBatch batch, Func<ColumnBatch, int, string>? idOf = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var messages = new List<(int, string?, byte[])>(batch.Count);
        foreach (var table in batch.Tables)
        {
            var byTable = _byTable(table.Schema.Table);
            var (op, lsn, seq) = (table.Schema.IndexOf(ChangeEnvelope.Op), table.Schema.IndexOf(ChangeEnvelope.Lsn), table.Schema.IndexOf(ChangeEnvelope.Seq));
            for (var row = 0; row < table.Count; row++)
            {
                messages.Add((Partition(table, row, byTable), idOf?.Invoke(table, row) ?? Id(table, row, op, lsn, seq) ?? SnapshotId(batch, table, row, op, lsn), ChangeMessages.Encode(table, row, batch.SettledBelow)));
            }
        }

        return messages;
    }

    private int Partition(ColumnBatch table, int row, bool byTable)
    {
        var text = new StringBuilder(table.Schema.Table);
        if (!byTable)
        {
            foreach (var k in table.Schema.Key) { text.Append('\u001f').Append(ChangeMessages.Text(table, k, row)); }
        }

        return (int)(XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text.ToString())) % (ulong)_cluster.Partitions);
    }

    private string? Id(ColumnBatch table, int row, int op, int lsn, int seq)
    {
        if (op < 0 || lsn < 0 || seq < 0 || table.Value(op, row) is not (ChangeEnvelope.Insert or ChangeEnvelope.Update or ChangeEnvelope.Delete or ChangeEnvelope.Truncate)) { return null; }
        return table.Value(lsn, row) is long l && table.Value(seq, row) is long s ? string.Create(CultureInfo.InvariantCulture, $"{_slot}:{l:x}:{s}") : null;
    }

    /// <summary>
    /// A snapshot row's id: <c>&lt;slot&gt;:&lt;snapshot&gt;:&lt;hash of table and key&gt;</c>, or for a table without a key
    /// <c>&lt;slot&gt;:&lt;snapshot&gt;:&lt;hash of table&gt;:&lt;_lsn&gt;:&lt;row&gt;</c>; null when the batch does not name its snapshot.
    /// </summary>
    private string? SnapshotId(RecordBatch batch, ColumnBatch table, int row, int op, int lsn)
    {
        if (op < 0 || lsn < 0 || batch.Snapshots.Count == 0 || table.Value(op, row) is not ChangeEnvelope.Read || table.Value(lsn, row) is not long at) { return null; }
        var name = table.Schema.Table;
        var snapshot = batch.Snapshots.FirstOrDefault(s => s.Lsn == at && s.Table == name)?.Snapshot;
        if (snapshot is null) { return null; }
        var text = new StringBuilder(name);
        if (table.Schema.Key.Count == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{_slot}:{snapshot}:{XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(name)):x16}:{at:x}:{row}");
        }

        foreach (var k in table.Schema.Key) { text.Append('\u001f').Append(ChangeMessages.Text(table, k, row) ?? "\u0000"); }
        return string.Create(CultureInfo.InvariantCulture, $"{_slot}:{snapshot}:{XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text.ToString())):x16}");
    }

    /// <summary>
    /// Publishes the batch and returns once JetStream stored every change (a majority of the replicas); while it does
    /// not (no quorum, NATS down) it publishes again every second, for ever: nothing of the batch may be confirmed in
    /// the slot before it is stored, and a change stored twice by the retry is one change (its id).
    /// </summary>
    public async Task PublishAsync(RecordBatch batch, TimeProvider time, ILogger log, Action<string?> condition, CancellationToken ct)
    {
        var messages = Messages(batch);
        if (messages.Count == 0) { return; }
        var failing = false;
        while (true)
        {
            try
            {
                await Log.PublishAsync(messages, ct).ConfigureAwait(false);
                if (failing)
                {
                    condition(null);
                    CdcLog.Published(log, Log.StreamName);
                }

                return;
            }
            catch (EventsNotStoredException e) when (!ct.IsCancellationRequested)
            {
                if (!failing) { CdcLog.NotStored(log, Log.StreamName, Postgres.PgCdcState.Lsn(batch.Position), e.Message); }
                failing = true;
                condition($"publishing changes to JetStream: {e.Message}");
                await Task.Delay(TimeSpan.FromSeconds(1), time, ct).ConfigureAwait(false);
            }
        }
    }

    public ValueTask DisposeAsync() => Log.DisposeAsync();
}

internal static partial class CdcLog
{
    [LoggerMessage(43700, LogLevel.Warning, "JetStream stream {JetStream}: the changes up to {Lsn} are not stored ({Reason}); the slot's position is not confirmed past them, and they are published again every second")]
    public static partial void NotStored(ILogger logger, string jetStream, string lsn, string reason);

    [LoggerMessage(43701, LogLevel.Information, "JetStream stream {JetStream}: changes are stored again")]
    public static partial void Published(ILogger logger, string jetStream);

    [LoggerMessage(43702, LogLevel.Information, "Replication slot {Slot}: this worker holds it and publishes its changes to JetStream stream {JetStream}")]
    public static partial void Relaying(ILogger logger, string slot, string jetStream);
}
