using Microsoft.Extensions.Logging;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;

namespace Sluice.Connectors.Nats;

/// <summary>
/// A <c>postgres_backfill</c> job's pages in cluster mode: published into its pipeline's change stream in JetStream
/// (<see cref="CdcChangeLog"/>, where the slot's holder publishes the changes), so every worker's steps and sinks take
/// them as they take the changes: on the partitions they lease, acknowledged once every sink committed, the lake sink
/// skipping by stream sequence what it committed already, the postgres sink fenced by the partitions' lease tokens.
/// A row's <c>Nats-Msg-Id</c> is <c>backfill:&lt;backfill&gt;:&lt;key&gt;</c> (the backfill's id, kept in its
/// <see cref="PgBackfillProgress"/>, and the row's paging key): the page a runner that died had published and not
/// recorded, published again by the run that resumes the backfill, is stored once (within the stream's 10-minute
/// deduplication window, <see cref="CdcChangeLog.DedupWindow"/>).
/// </summary>
internal sealed class BackfillLog : IAsyncDisposable
{
    private readonly CdcChangeLog _log;

    public BackfillLog(ClusterOptions cluster, string recipe, string pipeline, PostgresCdcSourceFactory source, ILoggerFactory? logging)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(source);
        // The stream's settings and partitions exactly as the pipeline's relay makes them (StandByPipeline).
        var mirrors = source.KeyedSinks.Where(s => s.ChangeStreamOption is not null).ToList();
        _log = new CdcChangeLog(cluster with { KeyOrder = true }, recipe, pipeline, source.Options.Slot, source.Options.BatchRows, source.Options.BatchLinger,
            table => mirrors.Any(m => m.KeepsByKey(table)), logging);
    }

    public string StreamName => _log.Log.StreamName;

    /// <summary>A backfilled row's message id.</summary>
    public static string Id(string backfill, string? key) => $"backfill:{backfill}:{key}";

    /// <summary>
    /// Publishes a page once: returns when JetStream stored every row (one it had already counts), else throws
    /// <see cref="EventsNotStoredException"/> (the caller tries again, outside the lease it holds meanwhile).
    /// </summary>
    public Task PublishAsync(RecordBatch page, string backfill, string keyColumn, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(page);
        return _log.Log.PublishAsync(_log.Messages(page, (table, row) => Id(backfill, ChangeMessages.Text(table, keyColumn, row))), ct);
    }

    public ValueTask DisposeAsync() => _log.DisposeAsync();
}
