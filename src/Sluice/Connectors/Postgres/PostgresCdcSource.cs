using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;
using Polly;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>The <c>postgres_cdc</c> source type: a table's changes through logical replication (pgoutput).</summary>
public sealed class PostgresCdcSourceType : ISourceType
{
    public string Name => "postgres_cdc";

    public ISourceFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return new PostgresCdcSourceFactory(recipe.Name, PostgresCdcOptions.Parse(options, recipe.Name));
    }
}

public sealed class PostgresCdcSourceFactory(string recipe, PostgresCdcOptions options) : IChangeSourceFactory, IConnectionCheck, IConnectedBatchTables
{
    /// <summary>
    /// The tables the source would stream, as the catalog has them now (each with the change envelope), so that
    /// <c>validate --connect</c> checks the columns steps and sinks name; null when the server does not answer.
    /// </summary>
    public async Task<IReadOnlyList<TableSchema>?> ReadBatchTablesAsync(CancellationToken ct)
    {
        await using var connection = await PgPreflight.OpenAsync(options.Connection.Builder(), "connection", [], ct).ConfigureAwait(false);
        if (connection is null) { return null; }
        var tables = new List<TableSchema>();
        foreach (var (schema, name, _, key) in await PgSlotAdmin.CatalogAsync(connection, ct).ConfigureAwait(false))
        {
            if (options.Tables.FirstOrDefault(t => t.Pattern.Matches(schema, name, options.Schema)) is not { } rule) { continue; }
            var table = options.Resolve(rule, schema, name, key);
            var columns = await PgSnapshotReader.ColumnsAsync(connection, null, schema, name, ct).ConfigureAwait(false);
            tables.Add(new TableSchema(table.BatchName, columns.Select(c => c with { Required = false }).Concat(ChangeEnvelope.Fields).ToList()) { Key = key });
        }

        if (options.EmitHeartbeats) { tables.Add(new TableSchema(options.HeartbeatTable, PgChangeReader.HeartbeatFields)); }
        return tables;
    }

    private readonly List<IChangeStreamSink> _keyed = [];

    public PostgresCdcOptions Options => options;

    public void RequireKeys(IChangeStreamSink sink) => _keyed.Add(sink);

    /// <summary>The sinks that keep rows by key (mirrors): each needs a table's changes in order.</summary>
    public IReadOnlyList<IChangeStreamSink> KeyedSinks => _keyed;

    public string? MirrorProblem(string table) => options.MirrorProblem(table);

    public IRunnableSource Create(IEngineServices services) =>
        throw new SluiceException("postgres_cdc: the source needs sinks to write to (add `sinks:` to the pipeline).");

    public IStreamSource CreateStream(IEngineServices services) => new PostgresCdcSource(services, recipe, options, _keyed);

    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => PgCdcPreflight.CheckAsync(options, ct);
}

/// <summary>
/// Streams the configured tables' changes. On the first start it creates the publication and the slot and reads the
/// tables in the slot's exported snapshot; afterwards it resumes from the pipeline's slowest sink. The slot's confirmed
/// position is moved only by <see cref="AcknowledgeAsync"/> (every sink committed) or, while idle with everything
/// acknowledged, to the server's keepalive position, so WAL of unrelated changes is not held back. A slot that is
/// missing, or was re-created or moved behind Sluice's back, stops the source with a message instead of skipping data.
/// </summary>
public sealed class PostgresCdcSource : IStreamSource, Core.Status.IStatusSource
{
    /// <summary>Pieces of at most <see cref="PgChangeReader.PieceRows"/> rows between the decoder and the batcher.</summary>
    public const int PieceQueue = 64;

    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly PostgresCdcOptions _options;
    private readonly ILogger _log;
    private readonly PgCdcState _state;
    private readonly PgSnapshotProgress _progress;
    private PgIncrementalSnapshot? _incremental;
    private InitialSnapshotMarks? _initial;
    private readonly Lock _confirmLock = new();
    private readonly IReadOnlyList<IChangeStreamSink> _keyed;
    private LogicalReplicationConnection? _replication;
    private PgChangeReader? _reader;
    private long _emitted;
    private long _acked;
    private long _confirmed;
    private long _consumed;
    private int _heldRows;
    private long _target = long.MaxValue;
    private (IReadOnlyList<CdcTable> Tables, long Position)? _added;
    private volatile bool _caughtUp;
    private readonly PgSlotMonitor _monitor;
    private readonly System.Collections.Concurrent.ConcurrentQueue<(long End, DateTimeOffset Commit)> _undelivered = new();
    private DateTimeOffset _streamingSince;
    private Core.Status.PipelineStatus? _status;
    private readonly ResiliencePipeline _reconnect;

    /// <summary>Bounds <see cref="_undelivered"/>; past it the newest batches are not tracked, which keeps the oldest (the lag) right.</summary>
    private const int UndeliveredTracked = 4096;

    public PostgresCdcSource(IEngineServices services, string recipe, PostgresCdcOptions options, IReadOnlyList<IChangeStreamSink>? keyed = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        _keyed = keyed ?? [];
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Postgres");
        _state = new PgCdcState(services.Metadata, services.Time);
        // On a cluster's worker each request it moves names it (the cluster's status shows who runs a snapshot).
        _progress = new PgSnapshotProgress(services.Metadata, services.Time, services.Worker?.Worker.Id);
        _monitor = new PgSlotMonitor(options, recipe, services, _log);
        _reconnect = BuildReconnect();
    }

    /// <summary>The slot as last checked (null before the first check): position, lag, WAL reservation.</summary>
    public SlotStatus? Slot => _monitor.Latest;

    /// <summary>The slot's figures as last checked, and the WAL it holds back as the backlog; a reconnect in progress as the condition.</summary>
    public void AttachStatus(Core.Status.PipelineStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        _status = status;
        status.Slot = SlotForStatus;
        status.Backlog = () => _monitor.Latest is { } s ? new Core.Status.Backlog(s.LagBytes, "bytes") : null;
        status.Snapshots = SnapshotsForStatus;
    }

    /// <summary>The slot as last checked, as the status shows it (null before the first check).</summary>
    public Core.Status.SlotFigures? SlotForStatus() => _monitor.Latest is { } s
        ? new Core.Status.SlotFigures(s.Slot, s.ConfirmedLsn, s.LagBytes, s.LagSeconds, s.WalStatus, s.SafeWalBytes, s.SecondsSinceMessage, s.CheckedAt.UtcDateTime)
        : null;

    /// <summary>How many of the slot's table snapshots the status shows (newest first): the running ones and the last finished.</summary>
    public const int SnapshotsShown = 20;

    /// <summary>The slot's table snapshots, as the status shows them (null before the first start made their table).</summary>
    public List<Core.Status.SnapshotFigures>? SnapshotsForStatus() => _progress.Figures(_options.Slot, _options.Connection.Database, SnapshotsShown);

    public string DeadLetterSource => $"postgres_cdc:{_recipe}/{_options.Slot}";

    /// <summary>
    /// Awaited before every connection to the slot (the first and each reconnect); in a cluster it throws unless this
    /// worker still holds the slot's lock (<see cref="PgSlotLease.EnsureHeldAsync"/>), so a worker that lost it never reads again.
    /// </summary>
    public Func<CancellationToken, Task>? BeforeConnect { get; set; }

    public bool CaughtUp => _caughtUp;

    /// <summary>
    /// Streams until cancelled. A lost connection (server restart, network, a terminated session) is retried with
    /// back-off from what every sink has acknowledged; batches read again are skipped or absorbed by the sinks. What
    /// waiting cannot cure (a refused login, missing tables, a lost slot) ends the stream with a <see cref="FatalException"/>.
    /// </summary>
    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        var resume = resumeAfter;
        Exception? lost = null;
        while (true)
        {
            var reconnecting = lost is not null;
            var (enumerator, more) = await _reconnect.ExecuteAsync(async _ =>
            {
                // A lost stream counts as the first failed attempt: logged, shown and waited out as any other.
                if (lost is { } e)
                {
                    lost = null;
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e).Throw();
                }

                if (reconnecting)
                {
                    var acked = Volatile.Read(ref _acked);
                    resume = acked > 0 ? Math.Max(acked, resume ?? 0) : resume;
                }

                return await OpenAsync(resume, ct).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
            if (reconnecting) { _status?.Condition(null); }
            await using (enumerator.ConfigureAwait(false))
            {
                while (more)
                {
                    yield return Settled(enumerator.Current);
                    try
                    {
                        more = await enumerator.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (PostgresException e) when (!PgFailures.IsTransient(e) && Translate(e) is var translated && translated != e)
                    {
                        throw translated;
                    }
                    catch (Exception e) when (PgFailures.IsTransient(e) && !ct.IsCancellationRequested)
                    {
                        lost = e;
                        break;
                    }
                }
            }

            if (lost is null) { yield break; }
        }
    }

    /// <summary>
    /// Whether batches carry the low-water mark (<see cref="RecordBatch.SettledBelow"/>): true but for a cluster's slot
    /// holder that runs the sinks itself (<c>SLUICE_CLUSTER_CDC=holder</c>), whose predecessor's sinks may still finish a
    /// batch they hold after the take-over, unfenced, below any mark this holder reaches.
    /// </summary>
    public bool Settles { get; set; } = true;

    /// <summary>
    /// The batch with the mark: what every sink acknowledged. A change below it is in a transaction that committed (its
    /// commit record starts) before an acknowledged commit's end, so the slot never sends it again: a reconnect or a
    /// restart resumes at or after it (from every sink's checkpoint, never below the slot's confirmed position), and
    /// the slot skips a transaction that committed before where it starts. A batch read later is above it too:
    /// changes come in commit order, and a snapshot's or chunk's rows take a position read after it.
    /// </summary>
    private RecordBatch Settled(RecordBatch batch) =>
        Settles && Volatile.Read(ref _acked) is var acked and > 0 ? batch with { SettledBelow = acked } : batch;

    /// <summary>Connects and reads up to the first batch (or the end), so a connection that fails is one failed attempt of <see cref="_reconnect"/>.</summary>
    private async Task<(IAsyncEnumerator<RecordBatch> Enumerator, bool More)> OpenAsync(long? resume, CancellationToken ct)
    {
        var enumerator = ReadConnectedAsync(resume, ct).GetAsyncEnumerator(ct);
        try
        {
            return (enumerator, await enumerator.MoveNextAsync().ConfigureAwait(false));
        }
        catch (PostgresException e) when (!PgFailures.IsTransient(e) && Translate(e) is var translated && translated != e)
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            throw translated;
        }
        catch
        {
            await enumerator.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reconnection after a lost or refused connection: from <see cref="ReconnectDelay"/> doubling up to <see cref="MaxReconnectDelay"/>, until it works or the pipeline stops.</summary>
    private ResiliencePipeline BuildReconnect() =>
        new ResiliencePipelineBuilder { TimeProvider = _services.Time }
            .AddTransientRetry(new RetryOptions(ReconnectDelay, MaxReconnectDelay), PgFailures.IsTransient, args =>
            {
                var reason = args.Outcome.Exception?.Message ?? "";
                PostgresLog.Reconnecting(_log, reason, (long)args.RetryDelay.TotalMilliseconds);
                _status?.Condition($"reconnecting in {args.RetryDelay.TotalSeconds:0.#} s: {reason}");
                return ValueTask.CompletedTask;
            })
            .Build();

    /// <summary>First wait before reconnecting after a lost connection (doubles up to <see cref="MaxReconnectDelay"/>).</summary>
    public static readonly TimeSpan ReconnectDelay = TimeSpan.FromMilliseconds(500);

    public static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(30);

    /// <summary>A sink that keeps rows by key (a mirror) cannot take a table without one: the start stops, naming both.</summary>
    private void RequireKeys(IReadOnlyList<CdcTable> tables)
    {
        foreach (var sink in _keyed)
        {
            if (tables.FirstOrDefault(t => t.KeyColumns.Count == 0 && sink.NeedsSourceKey(t.BatchName)) is { } keyless)
            {
                throw new FatalException(
                    $"postgres_cdc: table {keyless.Display} has no primary key (nor a replica identity index), but sink '{sink.SinkName}' has {sink.ChangeStreamOption}, " +
                    "which keeps one row per key; give the table a primary key, take it out of tables:, or use mode: changes in that sink.");
            }
        }
    }

    private async IAsyncEnumerable<RecordBatch> ReadConnectedAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        if (BeforeConnect is { } before) { await before(ct).ConfigureAwait(false); }
        _state.EnsureSchema();
        _progress.EnsureSchema();
        var database = _options.Connection.Database;
        bool create;
        bool again;
        long start;
        IReadOnlyList<CdcTable> tables;
        AddedTablesSnapshot? added = null;
        await using (var admin = new NpgsqlConnection(_options.Connection.ConnectionString("sluice-cdc-admin")))
        {
            await admin.OpenAsync(ct).ConfigureAwait(false);
            var slots = new PgSlotAdmin(admin, _options, _log);
            tables = await slots.ResolveTablesAsync(ct).ConfigureAwait(false);
            RequireKeys(tables);
            await slots.EnsurePublicationAsync(tables, ct).ConfigureAwait(false);
            var slot = await slots.WaitUntilFreeAsync(_services.Time, ct).ConfigureAwait(false);
            var record = _state.Get(_options.Slot, database);
            // This data folder read a slot of this name before: its sinks may hold rows of that slot's stream, which a
            // new slot's snapshot must replace, not add to (the deletes made since it was given up never come).
            again = record is not null;
            (create, var redo) = Decide(slot, record, resumeAfter);
            if (redo && ResumeInitial(record!, slot!.ConfirmedFlush, tables))
            {
                (create, redo) = (false, false);
            }

            if (redo)
            {
                PostgresLog.SnapshotRedo(_log, _options.Slot);
                await slots.DropSlotAsync(ct).ConfigureAwait(false);
            }

            if (create && _options.Snapshot)
            {
                await slots.EmitSnapshotGapAsync(ct).ConfigureAwait(false);
            }

            if (!create)
            {
                added = await AddedTablesAsync(slots, tables, ct).ConfigureAwait(false);
            }

            start = create ? 0 : Math.Max(resumeAfter ?? 0, slot!.ConfirmedFlush);
            // Read after the added tables' marker was written: a --once run waits for their rows.
            await using var lsn = new NpgsqlCommand("SELECT pg_current_wal_lsn()::text", admin);
            _target = PgCdcState.Parse((string)(await lsn.ExecuteScalarAsync(ct).ConfigureAwait(false))!);
        }

        var replication = new LogicalReplicationConnection(_options.Connection.ConnectionString("sluice-cdc"))
        {
            WalReceiverStatusInterval = _options.StatusInterval,
            // Npgsql asks the server for a keepalive after half of this without traffic.
            WalReceiverTimeout = _options.Heartbeat * 2,
        };
        await using var _ = replication.ConfigureAwait(false);
        await replication.Open(ct).ConfigureAwait(false);
        _replication = replication;
        PgOutputReplicationSlot slotHandle;
        if (create)
        {
            var created = await new PgSlotCreationWait(_options.Connection, _options.Slot, _log, _services.Time).WatchAsync(replication.CreatePgOutputReplicationSlot(
                _options.Slot, temporarySlot: false,
                slotSnapshotInitMode: _options.Snapshot ? LogicalSlotSnapshotInitMode.Export : LogicalSlotSnapshotInitMode.NoExport,
                cancellationToken: ct), replication.ProcessID, ct).ConfigureAwait(false);
            var consistentPoint = unchecked((long)(ulong)created.ConsistentPoint);
            _state.Created(_options.Slot, database, consistentPoint, _options.Snapshot);
            // The slot's snapshot reads them all (and is taken again if it does not reach every sink).
            _state.TablesRead(_options.Slot, database, tables, consistentPoint, replace: true);
            PostgresLog.SlotCreated(_log, _options.Slot, created.ConsistentPoint.ToString());
            if (_options.Snapshot && created.SnapshotName is { } snapshot)
            {
                var marks = new InitialSnapshotMarks(_progress, _options, tables, consistentPoint);
                _initial = marks;
                await foreach (var batch in new PgSnapshotReader(_options, tables, _log, DeadLetterSource, _services.DeadLetters).ReadAsync(snapshot, consistentPoint, again, marks.Sent, ct).ConfigureAwait(false))
                {
                    Volatile.Write(ref _emitted, batch.Position);
                    yield return batch;
                }
            }
            else
            {
                Volatile.Write(ref _emitted, consistentPoint);
                yield return new RecordBatch([], consistentPoint);
            }

            slotHandle = created;
            start = consistentPoint;
        }
        else
        {
            slotHandle = new PgOutputReplicationSlot(_options.Slot);
        }

        _emitted = Math.Max(Volatile.Read(ref _emitted), start);
        if (!create)
        {
            // The pipeline committed this far (a new slot's snapshot is acknowledged only once its batches are).
            _acked = Math.Max(Volatile.Read(ref _acked), start);
        }

        Confirm(start);
        PostgresLog.Streaming(_log, _options.Slot, PgCdcState.Lsn(start));
        await foreach (var batch in StreamAsync(replication, slotHandle, start, tables, added, ct).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    private (bool Create, bool Redo) Decide(SlotInfo? slot, SlotRecord? record, long? resumeAfter)
    {
        var where = $"database '{_options.Connection.Database}' on {_options.Connection.Host}:{_options.Connection.Port}";
        if (slot is null)
        {
            if (resumeAfter is { } p)
            {
                throw new FatalException(
                    $"postgres_cdc: replication slot '{_options.Slot}' is missing in {where}, but this pipeline has committed changes up to {PgCdcState.Lsn(p)}: " +
                    "changes made while the slot was gone cannot be recovered from it. To start over with a fresh snapshot, use a new data folder (or a new slot name); " +
                    "to re-create the slot and accept the gap, drop this pipeline's checkpoints.");
            }

            return (true, false);
        }

        if (slot.Plugin != "pgoutput")
        {
            throw new FatalException($"postgres_cdc: replication slot '{_options.Slot}' uses the '{slot.Plugin}' plugin, not pgoutput; choose another slot name.");
        }

        if (slot.Database != _options.Connection.Database)
        {
            throw new FatalException($"postgres_cdc: replication slot '{_options.Slot}' belongs to database '{slot.Database}', not '{_options.Connection.Database}'; choose another slot name.");
        }

        if (resumeAfter is null)
        {
            if (record is null)
            {
                if (!_options.Snapshot) { return (false, false); }
                throw new FatalException(
                    $"postgres_cdc: replication slot '{_options.Slot}' already exists in {where}, but this data folder has never read from it, so the rows before its position would be missed. " +
                    $"Drop it to start with a fresh snapshot (SELECT pg_drop_replication_slot('{_options.Slot}')), or set `snapshot: false` to stream from where the slot is.");
            }

            // The slot is ours, but its snapshot never reached every sink: take it again.
            return record.Snapshot ? (true, true) : (false, false);
        }

        if (record is { Snapshot: true } && resumeAfter < record.ConsistentPoint)
        {
            return (true, true);
        }

        var known = Math.Max(resumeAfter.Value, record?.AdvancedTo ?? 0);
        if (slot.ConfirmedFlush > known)
        {
            throw new FatalException(
                $"postgres_cdc: replication slot '{_options.Slot}' is at {PgCdcState.Lsn(slot.ConfirmedFlush)}, past this pipeline's position {PgCdcState.Lsn(known)}: " +
                "it was re-created or advanced by someone else, and the changes in between were never delivered. Use a new data folder or slot name to start over with a snapshot.");
        }

        return (false, false);
    }

    /// <summary>
    /// An initial snapshot that did not reach every sink is not taken again when it can go on: when some of it was
    /// committed everywhere (<see cref="InitialSnapshotMarks"/>) and every table not complete has a key, the slot is
    /// kept (its stream starts where the snapshot was taken) and the rest is read by incremental snapshots from the
    /// last committed key of each table, while streaming.
    /// </summary>
    private bool ResumeInitial(SlotRecord record, long slotAt, IReadOnlyList<CdcTable> tables)
    {
        var database = _options.Connection.Database;
        var marks = _progress.Initial(_options.Slot, database, record.ConsistentPoint);
        if (marks.Count == 0) { return false; }
        var rest = tables.Where(t => !(marks.TryGetValue((t.Schema, t.Name), out var m) && m.Done)).ToList();
        if (rest.Any(t => t.KeyColumns.Count == 0)) { return false; }
        var recipe = _recipe;
        _progress.ResumeInitial(_options.Slot, database, slotAt, rest.Select(t => new SnapshotRequest(
            _options.Slot, database, recipe, "", t.Schema, t.Name, null, _options.SnapshotChunkRows, PgSnapshotProgress.InitialKind)
        {
            LastKey = marks.TryGetValue((t.Schema, t.Name), out var m) ? m.LastKey : null,
        }));
        PostgresLog.InitialSnapshotResumed(_log, _options.Slot, tables.Count - rest.Count, tables.Count, rest.Count == 0 ? "nothing" : string.Join(", ", rest.Select(t => t.Display)));
        return true;
    }

    /// <summary>
    /// Tables of the recipe whose existing rows no sink has yet (added to the recipe after the first start): their rows
    /// as of a temporary slot's exported snapshot, for the reader to place in the stream at that slot's consistent
    /// point. They count as read once every sink acknowledged that place; a stop before that reads them again.
    /// </summary>
    private async Task<AddedTablesSnapshot?> AddedTablesAsync(PgSlotAdmin slots, IReadOnlyList<CdcTable> tables, CancellationToken ct)
    {
        var database = _options.Connection.Database;
        var known = _state.Tables(_options.Slot, database);
        if (known.Count == 0)
        {
            // A data folder from before tables were recorded: what it streams now is what its snapshot read.
            _state.TablesRead(_options.Slot, database, tables, 0, replace: false);
            return null;
        }

        var added = tables.Where(t => !known.Contains((t.Schema, t.Name))).ToList();
        if (added.Count == 0) { return null; }
        var names = string.Join(", ", added.Select(t => t.Display));
        if (!_options.Snapshot)
        {
            PostgresLog.TablesAddedNoSnapshot(_log, names);
            _state.TablesRead(_options.Slot, database, added, 0, replace: false);
            return null;
        }

        var temporary = new LogicalReplicationConnection(_options.Connection.ConnectionString("sluice-cdc-added"));
        await using (temporary.ConfigureAwait(false))
        {
            await temporary.Open(ct).ConfigureAwait(false);
            // A temporary slot (gone with this connection) only for its exported snapshot and consistent point.
            var name = $"sluice_added_{Guid.NewGuid():N}"[..32];
            var slot = await new PgSlotCreationWait(_options.Connection, name, _log, _services.Time).WatchAsync(temporary.CreatePgOutputReplicationSlot(
                name, temporarySlot: true, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, cancellationToken: ct), temporary.ProcessID, ct).ConfigureAwait(false);
            var consistentPoint = unchecked((long)(ulong)slot.ConsistentPoint);
            var (batches, rows) = await new PgSnapshotReader(_options, added, _log, DeadLetterSource, _services.DeadLetters).ReadAddedAsync(slot.SnapshotName!, consistentPoint, ct).ConfigureAwait(false);
            PostgresLog.TablesAdded(_log, names, rows, PgCdcState.Lsn(consistentPoint));
            await slots.EmitMarkerAsync(ct).ConfigureAwait(false);
            return new AddedTablesSnapshot(consistentPoint, batches, rows, position =>
            {
                lock (_confirmLock) { _added = (added, position); }
            });
        }
    }

    private async IAsyncEnumerable<RecordBatch> StreamAsync(LogicalReplicationConnection replication, PgOutputReplicationSlot slot, long start, IReadOnlyList<CdcTable> tables, AddedTablesSnapshot? added, [EnumeratorCancellation] CancellationToken ct)
    {
        var reader = new PgChangeReader(_options, tables, DeadLetterSource, _services.DeadLetters, _log, _services.Time) { Added = added };
        var incremental = new PgIncrementalSnapshot(_options, tables, _progress, reader, new PgSnapshotReader(_options, tables, _log, DeadLetterSource, _services.DeadLetters), _log, _services.Time, SnapshotName);
        incremental.Acknowledged(Volatile.Read(ref _acked));
        _incremental = incremental;
        _undelivered.Clear();
        _streamingSince = _services.Time.GetUtcNow();
        // A fresh start (or a reconnect): nothing is held or counted yet.
        _heldRows = 0;
        Interlocked.Exchange(ref _consumed, 0);
        _reader = reader;
        var channel = Channel.CreateBounded<ChangePiece>(new BoundedChannelOptions(PieceQueue) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var decoding = Task.Run(async () =>
        {
            try
            {
                await reader.RunAsync(replication, slot, new NpgsqlLogSequenceNumber(unchecked((ulong)start)), channel.Writer, stop.Token).ConfigureAwait(false);
                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e is OperationCanceledException && stop.IsCancellationRequested ? null : Translate(e));
            }
        }, CancellationToken.None);
        // The helpers beside the reader never fault on their own: a failure of one ends the stream after what was
        // already read (nothing is skipped) and the run stops with the reason, or reconnects when it is transient.
        var status = Task.Run(async () =>
        {
            try
            {
                await StatusLoopAsync(replication, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        var monitor = Task.Run(async () =>
        {
            try
            {
                await _monitor.RunAsync(OldestUndelivered, () => reader.LastMessageAt ?? _streamingSince, () => Volatile.Read(ref _acked), stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        var snapshots = Task.Run(async () =>
        {
            try
            {
                await incremental.RunAsync(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e) when (PgFailures.IsTransient(e))
            {
                // The stream meets the same fault and reconnects; the snapshot resumes with it from its last chunk.
            }
            catch (Exception e)
            {
                // Anything else (the metadata store failing) ends the stream after what was read, loudly.
                channel.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        try
        {
            var held = new List<ColumnBatch>();
            var heldSnapshots = new List<SnapshotRows>();
            long? heldEnd = null;
            var atBoundary = true;
            var handedOver = false;
            DateTimeOffset? firstCommit = null;
            var markerSent = false;
            Task<bool>? waiting = null;
            while (true)
            {
                if (channel.Reader.TryRead(out var piece))
                {
                    firstCommit ??= piece.CommitTime;
                    held.AddRange(piece.Tables);
                    if (piece.Snapshots is { } named) { heldSnapshots.AddRange(named); }
                    _heldRows += piece.Rows;
                    // Counted as consumed only once held: the idle check must never see these rows in neither place.
                    Interlocked.Increment(ref _consumed);
                    atBoundary = piece.CommitEnd is not null;
                    handedOver = piece.HandOver;
                    heldEnd = piece.CommitEnd ?? heldEnd;
                    if (!(atBoundary && (handedOver || _heldRows >= _options.BatchRows))) { continue; }
                }

                // The reader lingered already (PostgresCdcOptions.BatchLinger): the end of its hand-over at a commit is a batch.
                if (atBoundary && _heldRows > 0 && heldEnd is { } end && (_heldRows >= _options.BatchRows || handedOver))
                {
                    var batch = new RecordBatch(ColumnBatchConcat.Runs(held), end) { Snapshots = heldSnapshots.Count == 0 ? [] : [.. heldSnapshots] };
                    heldSnapshots.Clear();
                    // Emitted before no longer held, for the same reason.
                    Volatile.Write(ref _emitted, end);
                    if (firstCommit is { } commit && _undelivered.Count < UndeliveredTracked) { _undelivered.Enqueue((end, commit)); }
                    firstCommit = null;
                    held.Clear();
                    _heldRows = 0;
                    handedOver = false;
                    yield return batch;
                    continue;
                }

                if (!markerSent && IsCaughtUp(replication))
                {
                    // Lets a `--once` run end when nothing new arrived; sinks skip it (its position is not new).
                    _caughtUp = true;
                    markerSent = true;
                    yield return new RecordBatch([], Volatile.Read(ref _emitted));
                    continue;
                }

                waiting ??= channel.Reader.WaitToReadAsync(stop.Token).AsTask();
                // Until the marker is sent, look again every 100 ms whether the stream has caught up; then only the next piece.
                var done = markerSent ? waiting : await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(100), _services.Time, stop.Token)).ConfigureAwait(false);
                if (done == waiting)
                {
                    var more = await waiting.ConfigureAwait(false);
                    waiting = null;
                    if (!more)
                    {
                        await channel.Reader.Completion.ConfigureAwait(false);
                        yield break;
                    }
                }
                else if (done.IsCanceled)
                {
                    stop.Token.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            // The reader has ended its replication read (PgChangeReader.FinishReadAsync) before the connection is disposed.
            await Task.WhenAll(decoding, status, monitor, snapshots).ConfigureAwait(false);
            _replication = null;
        }
    }

    /// <summary>
    /// An incremental snapshot's name: its request's id; the rest of an interrupted initial snapshot is named as the
    /// initial snapshot itself (its slot's consistent point), so the rows its last holder had published already are
    /// known again as the same rows.
    /// </summary>
    private string SnapshotName(SnapshotRequest request) =>
        request.Kind == PgSnapshotProgress.InitialKind && _state.Get(_options.Slot, _options.Connection.Database) is { } slot
            ? PgSnapshotNames.Initial(slot.ConsistentPoint)
            : PgSnapshotNames.Request(request.Id);

    private DateTimeOffset? OldestUndelivered() => _undelivered.TryPeek(out var oldest) ? oldest.Commit : null;

    private bool IsCaughtUp(LogicalReplicationConnection replication) =>
        NothingHeld() && unchecked((long)(ulong)replication.LastReceivedLsn) >= _target;

    /// <summary>
    /// No change read is held anywhere before the batch: not in the reader, the channel or the batcher. Read in the
    /// order a piece travels (reader, written, consumed, held), so a piece that moves on meanwhile is still seen in a
    /// later place; read the other way round it could slip past every check.
    /// </summary>
    private bool NothingHeld() =>
        _reader is { Idle: true } r && r.PiecesWritten == Interlocked.Read(ref _consumed) && Volatile.Read(ref _heldRows) == 0;

    /// <summary>
    /// Advances the confirmed position over idle WAL when everything read has been acknowledged. Npgsql itself reports
    /// the confirmed position to the server every <see cref="PostgresCdcOptions.StatusInterval"/>.
    /// </summary>
    private async Task StatusLoopAsync(LogicalReplicationConnection replication, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.StatusInterval, _services.Time);
        var full = false;
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            // Read the server's position first: everything before it had been handed over when it was set.
            var serverAt = unchecked((long)(ulong)replication.LastReceivedLsn);
            // Emitted is read before acknowledged: a batch emitted meanwhile makes it look busy, never idle.
            var idle = NothingHeld() && Volatile.Read(ref _emitted) is var emitted && Volatile.Read(ref _acked) >= emitted;
            if (idle && serverAt > Volatile.Read(ref _confirmed))
            {
                try
                {
                    _state.Advanced(_options.Slot, _options.Connection.Database, serverAt);
                }
                catch (Exception e) when (Core.IO.DiskFull.Is(e))
                {
                    // Not recorded, so not confirmed: the slot only holds a little more WAL until space is freed. Ending
                    // this loop instead would stop idle advancing silently and fail the stream later, at its stop.
                    if (!full) { PostgresLog.IdleAdvanceWaits(_log, _options.Slot, Core.IO.DiskFull.Describe(e, _services.Data.MetadataPath)); }
                    full = true;
                    continue;
                }

                full = false;

                Confirm(serverAt);
            }
        }
    }

    private void Confirm(long position)
    {
        lock (_confirmLock)
        {
            if (position <= _confirmed) { return; }
            _confirmed = position;
            _replication?.SetReplicationStatus(new NpgsqlLogSequenceNumber(unchecked((ulong)position)));
        }
    }

    public Task AcknowledgeAsync(long position, CancellationToken ct)
    {
        long seen;
        do
        {
            seen = Volatile.Read(ref _acked);
            if (position <= seen) { break; }
        }
        while (Interlocked.CompareExchange(ref _acked, position, seen) != seen);
        while (_undelivered.TryPeek(out var oldest) && oldest.End <= position) { _undelivered.TryDequeue(out _); }
        Confirm(position);
        (IReadOnlyList<CdcTable> Tables, long Position)? added;
        lock (_confirmLock)
        {
            added = _added is { } a && position >= a.Position ? a : null;
            if (added is not null) { _added = null; }
        }

        if (added is { } done) { _state.TablesRead(_options.Slot, _options.Connection.Database, done.Tables, done.Position, replace: false); }
        _initial?.Acknowledged(position);
        _incremental?.Acknowledged(position);
        return Task.CompletedTask;
    }

    /// <summary>A permanent error as the user should read it (<see cref="FatalException"/>); any other as it is.</summary>
    private Exception Translate(Exception e) => e switch
    {
        PostgresException { SqlState: "55006" } => new FatalException($"postgres_cdc: replication slot '{_options.Slot}' is in use by another process: {e.Message}", e),
        // Postgres says it two ways: asked for changes the slot no longer holds, or asked to read from a slot it invalidated
        // while this run streamed ("cannot read from logical replication slot ..."; Postgres 15 says it only of an invalidated
        // slot, and its detail may be redacted by Npgsql, so the message alone decides).
        PostgresException { SqlState: "55000" } p when p.MessageText.Contains("can no longer get changes", StringComparison.Ordinal)
            || p.MessageText.Contains("cannot read from logical replication slot", StringComparison.Ordinal) => new FatalException(
            $"postgres_cdc: replication slot '{_options.Slot}' was invalidated by the server (wal_status 'lost': it held back more WAL than max_slot_wal_keep_size) and can no longer give the changes after this pipeline's position; none were skipped. " +
            $"Use a new data folder or slot name to start over with a snapshot. ({e.Message})", e),
        PostgresException { SqlState: "42704" } => new FatalException($"postgres_cdc: replication slot '{_options.Slot}' or publication '{_options.Publication}' vanished while streaming: {e.Message}", e),
        _ => PgFailures.Fatal(e, $"postgres_cdc: {PgFailures.Describe(_options.Connection)}") ?? e,
    };

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
