using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;
using Sluice.Recipes.Reminders.Serving;

namespace Sluice.Recipes.Reminders.Pipeline;

/// <summary>The <c>reminder_store</c> sink type: lands what the <c>attorney_events</c> step made in the recipe's store (lake or PostgreSQL).</summary>
public sealed class ReminderStoreSinkType() : SinkType<(string Pipeline, ReminderStoreOptions Store)>("reminder_store")
{
    protected override (string Pipeline, ReminderStoreOptions Store) ParseOptions(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var store = ReminderStoreOptions.FromKey(map, recipe, "The store file (where reminders are kept), relative to the recipe.");
        var pipeline = map.KeyPath.StartsWith("pipelines.", StringComparison.Ordinal) ? map.KeyPath["pipelines.".Length..].Split('.')[0] : "push";
        return (pipeline, store);
    }

    protected override IBatchSink Create((string Pipeline, ReminderStoreOptions Store) options, string recipe, IEngineServices services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.Cluster is not null)
        {
            RequireShared(options.Store, services);
        }

        return new ReminderStoreSink(ReminderWarehouses.Create(services, options.Store, recipe), $"events:{recipe}/{options.Pipeline}")
        {
            Queries = (recipe, ReminderKeys.Load(options.Store, services.Data)),
            Time = services.Time,
            Log = services.Logging.CreateLogger("Sluice.ReminderStore"),
        };
    }

    /// <summary>
    /// On a worker of a cluster every worker must store into one store and protect fields with one key: another
    /// worker's lake, or a key of its own data folder, would split the events and break the rule's joins, and a replay
    /// is skipped only where the first copy was stored.
    /// </summary>
    private static void RequireShared(ReminderStoreOptions store, IEngineServices services)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(store.KeyEnv)))
        {
            throw new Core.SluiceException($"reminder_store in cluster mode: each worker would protect fields with a key of its own data folder ({store.KeyFile}); set {store.KeyEnv} to the same key for every worker");
        }

        if (!store.UsesPostgres)
        {
            if (services.Metadata.Shared is null)
            {
                throw new Core.SluiceException($"reminder_store in cluster mode: the lake zone '{store.Zone}' must be the cluster's shared lake; set {Core.Metadata.SharedMetadata.PostgresVariable} and {Core.Metadata.SharedMetadata.FolderVariable} (or give its store a postgres: schema)");
            }

            // Refuses now, naming the variable, rather than at the first batch.
            _ = services.Lake.Storage;
        }
    }
}

/// <summary>
/// Appends <c>source_event</c>, <c>attorney_events</c> and the refused events (as dead letters of
/// <see cref="LetterSource"/>) with the batch's position, all in one transaction of the store. A batch at or below the
/// position the store holds is skipped, so a replay after a crash lands nothing twice, whichever store it is; on a
/// worker of a cluster an event is skipped by its place in the shared log instead, whichever worker stored it. A store
/// server that is unreachable or restarting is waited out (the batch written again with doubling pauses, health red
/// meanwhile) rather than ending the run: what is not stored stays in the landing log, unacknowledged to the source.
/// </summary>
public sealed class ReminderStoreSink(IReminderWarehouse warehouse, string letterSource) : IBatchSink, Sluice.Serving.IHttpEndpoints
{
    private bool _initialised;

    /// <summary>When set, the sink also serves <c>GET /v1/reminders</c> for the recipe (tenant-scoped).</summary>
    public (string Recipe, FieldProtector Protector)? Queries { get; init; }

    public long MaxRequestBodyBytes => 0;

    public bool Healthy => !_waiting;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILogger Log { get; init; } = NullLogger.Instance;

    private volatile bool _waiting;

    public void MapEndpoints(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder routes, Sluice.Serving.ServingContext context)
    {
        if (Queries is { } q) { new RemindersEndpoint(q.Recipe, q.Protector, context).Map(routes); }
    }

    public void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks)
    {
    }

    public string Name => "reminder_store";

    public string LetterSource => letterSource;

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        // The transaction did not commit (or committed and is skipped by its position when written again).
        var retry = _retry ??= new TransientRetry("reminder_store", new RetryOptions(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10)), Time, IsServerGone)
        {
            Retrying = a =>
            {
                _waiting = true;
                ReminderStoreLog.Waiting(Log, (a.Error.InnerException ?? a.Error).Message, a.Delay.TotalMilliseconds);
            },
        };
        await retry.RunAsync(token => WriteOnceAsync(batch, checkpointKey, token), ct).ConfigureAwait(false);
        _waiting = false;
    }

    private TransientRetry? _retry;

    /// <summary>A lost or refused connection to the store's server (not an answer about the data or the rights).</summary>
    private static bool IsServerGone(Exception e) =>
        Connectors.Postgres.PgFailures.IsTransient(e) || (e is Core.SluiceException && e.InnerException is { } inner && Connectors.Postgres.PgFailures.IsTransient(inner));

    private async Task WriteOnceAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        if (!_initialised)
        {
            await warehouse.InitialiseAsync(ct).ConfigureAwait(false);
            _initialised = true;
        }

        if (batch.Log is { } log)
        {
            await AppendOnceAsync(batch, log, checkpointKey, ct).ConfigureAwait(false);
            return;
        }

        long? stored = await warehouse.ReadCheckpointAsync(checkpointKey, ct).ConfigureAwait(false) is { } text ? long.Parse(text, CultureInfo.InvariantCulture) : null;
        if (stored >= batch.Position)
        {
            return;
        }

        var sourceEvents = batch.Table(ReminderTables.SourceEvent) ?? Missing(ReminderTables.SourceEvent);
        var events = batch.Table(ReminderTables.AttorneyEvents) ?? Missing(ReminderTables.AttorneyEvents);
        var rejectedTable = batch.Table(AttorneyEventsStep.RejectedTable);
        if (stored is { } landed)
        {
            // After a restart the stream may cut batches differently: rows below what the store holds are not written again.
            sourceEvents = Newer(sourceEvents, batch.Table(AttorneyEventsStep.SourceOffsetsTable), landed);
            events = Newer(events, batch.Table(AttorneyEventsStep.EventOffsetsTable), landed);
            rejectedTable = rejectedTable is null ? null : Newer(rejectedTable, rejectedTable, landed, 3);
        }

        await warehouse.AppendAsync(new NormalisedBatch(sourceEvents, events, Rejected(rejectedTable)), letterSource, checkpointKey, batch.Position.ToString(CultureInfo.InvariantCulture), null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A batch of a cluster's shared log (JetStream): its position is this worker's batch number, which says nothing of
    /// what another worker stored, so a replay is told by the events' sequences, recorded with the rows in the store
    /// under the sink's key without the worker (<see cref="IReminderWarehouse.AppendOnceAsync"/>): an event a dead
    /// worker stored and did not acknowledge, delivered again to any worker, lands once. Each row's event is its
    /// <c>_offset</c> (the stream sequence and the event's index in its message), carried by the step's offset tables.
    /// </summary>
    private async Task AppendOnceAsync(RecordBatch batch, Core.Pipeline.LogSequences log, string checkpointKey, CancellationToken ct)
    {
        var sourceEvents = batch.Table(ReminderTables.SourceEvent) ?? Missing(ReminderTables.SourceEvent);
        var events = batch.Table(ReminderTables.AttorneyEvents) ?? Missing(ReminderTables.AttorneyEvents);
        var rejectedTable = batch.Table(AttorneyEventsStep.RejectedTable);
        var sourceOffsets = batch.Table(AttorneyEventsStep.SourceOffsetsTable);
        var eventOffsets = batch.Table(AttorneyEventsStep.EventOffsetsTable);
        var left = 0;
        await warehouse.AppendOnceAsync(log, Core.Pipeline.WorkerCheckpointScope.Shared(checkpointKey), done =>
        {
            var fresh = NotCommitted(sourceEvents, sourceOffsets, done);
            left = sourceEvents.Count - fresh.Count;
            return new NormalisedBatch(fresh, NotCommitted(events, eventOffsets, done), Rejected(rejectedTable is null ? null : NotCommitted(rejectedTable, rejectedTable, done, 3)));
        }, letterSource, checkpointKey, batch.Position.ToString(CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
        if (left > 0) { ReminderStoreLog.ReplaySkipped(Log, left, sourceEvents.Count, log.Log); }
        if (left < sourceEvents.Count) { Core.CrashPoint.Reach(StoredCrashPoint); }
    }

    /// <summary>On a worker of a cluster: events are stored and not yet acknowledged to JetStream (<see cref="Core.CrashPoint"/>).</summary>
    public const string StoredCrashPoint = "reminder.store-committed";

    /// <summary>The rows of <paramref name="table"/> whose event (offset in <paramref name="offsets"/>, column <paramref name="column"/>) none of <paramref name="done"/> holds.</summary>
    private static ColumnBatch NotCommitted(ColumnBatch table, ColumnBatch? offsets, IReadOnlyList<Core.Pipeline.SequenceRange> done, int column = 0)
    {
        if (done.Count == 0 || table.Count == 0)
        {
            return table;
        }

        var at = offsets?.Column<long>(column);
        var keep = new List<int>(table.Count);
        for (var i = 0; i < table.Count; i++)
        {
            if (at?[i] is not { } o)
            {
                throw new Core.SluiceException($"reminder_store: table '{table.Schema.Table}' has rows without their event's _offset, and some of this batch's events were stored already by another worker (a replay after a worker's death), so its rows cannot be told apart; keep the source's _offset column up to the attorney_events step");
            }

            if (!Core.Pipeline.SequenceRange.AnyHolds(done, o)) { keep.Add(i); }
        }

        return keep.Count == table.Count ? table : table.Gather(keep.ToArray());
    }

    private static List<RejectedEvent> Rejected(ColumnBatch? table)
    {
        var rejected = new List<RejectedEvent>();
        if (table is { } r)
        {
            for (var i = 0; i < r.Count; i++) { rejected.Add(new RejectedEvent(r.Strings(0)[i]!, r.Strings(1)[i]!, r.Strings(2)[i]!)); }
        }

        return rejected;
    }

    /// <summary>The rows of <paramref name="table"/> whose offset (in <paramref name="offsets"/>, column <paramref name="column"/>) is at or above <paramref name="landed"/>.</summary>
    private static ColumnBatch Newer(ColumnBatch table, ColumnBatch? offsets, long landed, int column = 0)
    {
        if (offsets is null)
        {
            return table;
        }

        var at = offsets.Column<long>(column);
        var keep = Enumerable.Range(0, table.Count).Where(i => at[i] is not { } o || o >= landed).ToArray();
        return keep.Length == table.Count ? table : table.Gather(keep);
    }

    private static ColumnBatch Missing(string table) =>
        throw new Core.SluiceException($"reminder_store: the batch has no '{table}' table; put an attorney_events step before this sink.");

    public ValueTask DisposeAsync()
    {
        Queries?.Protector.Dispose();
        return warehouse.DisposeAsync();
    }
}

internal static partial class ReminderStoreLog
{
    [LoggerMessage(9950, LogLevel.Warning, "reminder_store: the store's server cannot be reached ({Reason}); the batch is written again in {DelayMs} ms, and nothing is acknowledged until it lands")]
    public static partial void Waiting(ILogger logger, string reason, double delayMs);

    [LoggerMessage(35660, LogLevel.Information, "reminder_store: {Skipped} of the batch's {Events} events of log {Log} were stored already (by a worker that died before acknowledging them, or that still held them when they were delivered again); they are not stored twice")]
    public static partial void ReplaySkipped(ILogger logger, int skipped, int events, string log);
}
