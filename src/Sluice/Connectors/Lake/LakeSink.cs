using System.Globalization;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.IO;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Connectors.Lake;

/// <summary>The <c>lake</c> sink type: a pipeline's tables into the embedded Parquet lake, exactly once.</summary>
public sealed class LakeSinkType() : SinkType<LakeSinkOptions>("lake")
{
    protected override LakeSinkOptions ParseOptions(ConfigMap map, RecipeContext recipe) => LakeSinkOptions.Parse(map);

    protected override IBatchSink Create(LakeSinkOptions options, string recipe, IEngineServices services) => new LakeSink(services, options);

    /// <summary>
    /// A mirror takes every table; one given <c>keys:</c> is keyed by them, any other by the source's key. It applies
    /// changes, so it needs every update and delete of the tables it is given keys for.
    /// </summary>
    protected override ChangeStreamUse ChangeStream(LakeSinkOptions options, ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(LakeSink.NameOf(options.Zone), options.Mode == LakeSinkMode.Mirror ? "mode: mirror" : null, table => !options.Keys.ContainsKey(table))
        {
            // A mirror keeps every table by key, the tables given keys: too.
            KeepsByKey = _ => options.Mode == LakeSinkMode.Mirror,
            CheckSource = source =>
            {
                foreach (var table in options.Keys.Keys)
                {
                    if (source.MirrorProblem(table) is { } problem) { map.Error("keys", $"lake sink {LakeSink.NameOf(options.Zone)}: {problem}"); }
                }
            },
        };
    }
}

/// <summary>
/// Writes each batch's tables as Parquet files, one per day partition, and publishes them in one manifest transaction
/// together with the sink's checkpoint: the data and the position can never disagree, so a replay after a crash
/// writes nothing twice (rows whose position column is at or below the checkpoint are skipped). Small files are merged
/// in the background (<see cref="LakeCompactor"/>), and replaced files are deleted once their grace has passed.
/// </summary>
public sealed class LakeSink : IBatchSink
{
    private readonly IEngineServices _services;
    private readonly LakeSinkOptions _options;
    private readonly CheckpointStore _checkpoints;
    private readonly ILogger _log;
    private readonly Dictionary<string, (LakeTable Table, string Signature)> _tables = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _tablesGate = new();
    private readonly Dictionary<int, string> _dayNames = [];
    private Task? _compaction;
    private long? _committed;

    /// <summary>The highest low-water mark of the batches written (<see cref="RecordBatch.SettledBelow"/>), 0 before one: what a mirror's fold may drop below.</summary>
    private long _settledBelow;
    private bool _loaded;

    public LakeSink(IEngineServices services, LakeSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _options = options;
        _checkpoints = new CheckpointStore(services.Metadata, services.Time);
        _log = services.Logging.CreateLogger("Sluice.LakeSink");
        if (services.Cluster is not null)
        {
            // Every worker must write one lake and record its events in one manifest, else a batch done again by
            // another worker after a death lands twice (in two lakes), and no query sees all of them.
            if (services.Metadata.Shared is null)
            {
                throw new SluiceException($"lake sink {Name} in cluster mode: the workers share the lake's manifest in the cluster's metadata store and its files in a shared folder; set {SharedMetadata.PostgresVariable} and {SharedMetadata.FolderVariable} (docs/SCALING.md, \"The lake sink on several workers\")");
            }

            _ = services.Lake.Storage;
        }
    }

    public string Name => NameOf(_options.Zone);

    /// <summary>A batch is committed to the lake and not yet acknowledged to its source (<see cref="CrashPoint"/>).</summary>
    public const string CommittedCrashPoint = "lake.sink-committed";

    /// <summary>The name of the lake sink of a zone (part of its checkpoint key).</summary>
    public static string NameOf(string zone) => $"lake:{zone}";

    /// <summary>
    /// Batches waiting are committed together: fewer, larger files, and one commit for all of them. Up to 50,000 rows,
    /// the HTTP source's largest batch: joining gathers small batches, never two large ones (memory stays as it was).
    /// </summary>
    public SinkJoining Joining => SinkJoining.Waiting(50_000);

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (!_loaded)
        {
            var value = _checkpoints.Get(checkpointKey);
            _committed = value is null ? null : long.Parse(value, CultureInfo.InvariantCulture);
            _loaded = true;
        }

        if (batch.Log is null)
        {
            await WriteAsync(batch, checkpointKey, Unwritten, null, ct).ConfigureAwait(false);
            return;
        }

        // A cluster's shared log: positions are this worker's batch numbers, so what was written is known by the
        // events' sequences, committed in the shared manifest (LakeLogCommits), not by the checkpoint.
        var sink = LogSink(checkpointKey);
        for (var attempt = 1; ; attempt++)
        {
            var done = _services.Lake.LogCommits.Committed(sink, batch.Log);
            var fresh = batch.Log.Except(done);
            if (fresh.Count < batch.Log.Count) { LakeSinkLog.ReplaySkipped(_log, Name, batch.Log.Count - fresh.Count, batch.Log.Count, batch.Log.Log); }
            try
            {
                await WriteAsync(batch, checkpointKey, t => NotCommitted(t, done), (c, tx) => _services.Lake.LogCommits.Record(c, tx, sink, fresh), ct).ConfigureAwait(false);
                return;
            }
            catch (LakeConflictException e) when (attempt < 3)
            {
                // Another worker committed some of these events since they were looked up (they were in flight on
                // both): what this commit staged is left to the orphan sweep, and the look-up is done again.
                LakeSinkLog.ReplayRaced(_log, Name, e.Message);
            }
        }
    }

    /// <summary>
    /// The sink's key for the events it committed: its checkpoint key without the worker's scope, since any worker of
    /// the pipeline may get any event again.
    /// </summary>
    private string LogSink(string checkpointKey)
    {
        var own = ":sink:" + Name;
        var at = checkpointKey.IndexOf(own, StringComparison.Ordinal);
        return at < 0 ? checkpointKey : checkpointKey[..(at + own.Length)];
    }

    /// <summary>
    /// The column holding a row's sequence in a cluster's shared log: the position column, except in a mirror, which
    /// positions by the change's <c>_lsn</c> and whose rows carry their JetStream sequence as <c>_offset</c> as every
    /// cluster row does (ChangeDecoder).
    /// </summary>
    private string LogColumn => _options.Mode == LakeSinkMode.Mirror ? Connectors.Http.Ingest.StreamShape.OffsetColumn : _options.PositionColumn;

    /// <summary>The rows whose events are not among <paramref name="done"/> (committed by some worker already).</summary>
    private ColumnBatch NotCommitted(ColumnBatch table, IReadOnlyList<Core.Pipeline.SequenceRange> done)
    {
        if (done.Count == 0 || table.Count == 0) { return table; }
        var column = table.Schema.IndexOf(LogColumn);
        if (column < 0 || table.Schema.Fields[column].Type != FieldType.Integer)
        {
            throw new SluiceException($"lake sink {Name}: table '{table.Schema.Table}' has no integer column '{LogColumn}' ({(_options.Mode == LakeSinkMode.Mirror ? "the stream's sequence" : "position_column")}), so the events of its rows cannot be told apart, and some of this batch's events were committed already by another worker (a replay after a worker's death); keep the column through the steps");
        }

        var positions = (long?[])table.Columns[column];
        var keep = new List<int>(table.Count);
        for (var i = 0; i < table.Count; i++)
        {
            if (positions[i] is not { } p || !Core.Pipeline.SequenceRange.AnyHolds(done, p)) { keep.Add(i); }
        }

        return keep.Count == table.Count ? table : table.Gather(keep.ToArray());
    }

    private async Task WriteAsync(RecordBatch batch, string checkpointKey, Func<ColumnBatch, ColumnBatch> unwrittenOf, Action<System.Data.Common.DbConnection, System.Data.Common.DbTransaction>? alsoRecord, CancellationToken ct)
    {
        // What follows blocks (DuckDB reads of a mirror, fsyncs, the manifest's transaction): not on a socket thread.
        await InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
        using var stager = _services.Lake.BeginStaging($"lake-{_options.Zone}");
        var mirror = _options.Mode == LakeSinkMode.Mirror ? new MirrorWrite(_services.Lake, Name, MirrorWrite.Marking(batch.Tables)) : null;
        foreach (var raw in batch.Tables)
        {
            var unwritten = unwrittenOf(raw);
            if (mirror is not null)
            {
                // A mirror's rows are the source table's with the change envelope: the stream's sequence, once it has
                // told the committed changes apart, is no column of the table.
                await AddMirroredAsync(stager, mirror, batch.Log is null ? unwritten : Without(unwritten, LogColumn), ct).ConfigureAwait(false);
                continue;
            }

            var rows = UnholdableValues.Refuse(unwritten, unwritten.Schema.Fields.Select((f, c) => Unholdable(unwritten, c, f.Name == _options.PartitionBy)).ToList(), [], _services.DeadLetters, Name);
            if (rows.Count == 0)
            {
                continue;
            }

            var table = TableFor(rows.Schema);
            var partition = rows.Schema.IndexOf(_options.PartitionBy);
            if (partition < 0 || rows.Schema.Fields[partition].Type != FieldType.Timestamp)
            {
                throw new SluiceException($"lake sink {Name}: table '{rows.Schema.Table}' has no timestamp column '{_options.PartitionBy}' to partition by (partition_by)");
            }

            var times = (DateTime?[])rows.Columns[partition];
            await stager.AddAsync(table, rows, row => DayName(times[row] is { } t ? DateOnly.FromDateTime(t) : DateOnly.MinValue), ct).ConfigureAwait(false);
        }

        var position = batch.Position.ToString(CultureInfo.InvariantCulture);
        _services.Lake.Commit(stager, (c, tx) =>
        {
            alsoRecord?.Invoke(c, tx);
            _checkpoints.Set(checkpointKey, position, c, tx);
            foreach (var commit in batch.Commits) { commit.Record(c, tx); }
        });
        _committed = batch.Position;
        if (batch.SettledBelow is { } settled && settled > Volatile.Read(ref _settledBelow)) { Volatile.Write(ref _settledBelow, settled); }
        CrashPoint.Reach(CommittedCrashPoint);
        if (_compaction is null && _options.CompactInterval > TimeSpan.Zero)
        {
            _compaction = Task.Run(() => CompactLoopAsync(_stop.Token), CancellationToken.None);
        }
    }

    /// <summary>Stages a table's changes for its mirror: whole (unchanged values filled in), unpartitioned, with the envelope that orders them.</summary>
    private async Task AddMirroredAsync(LakeStager stager, MirrorWrite mirror, ColumnBatch changes, CancellationToken ct)
    {
        if (changes.Count == 0) { return; }
        var key = MirrorKeyOf(changes.Schema);
        var table = TableFor(changes.Schema, key);
        // In position order, each change once: a value a change did not carry is the key's previous version's, which a
        // copy of an older change after it in the batch (a redelivery) is not. Nor is a change older than what the mirror
        // holds for its key (stored late by the stream), which changes nothing and is left out first.
        var ordered = MirrorChanges.InPositionOrder(changes, key);
        var fresh = MirrorKeyCheck.Newer(_services.Lake, table, ordered, key);
        if (fresh.Count < ordered.Count) { LakeSinkLog.OlderThanHeld(_log, Name, table.QualifiedName, ordered.Count - fresh.Count, ordered.Count); }
        var (whole, refused) = mirror.Prepare(fresh, key, table);
        var checks = whole.Schema.Fields.Select((f, c) => Unholdable(whole, c, false)).ToList();
        if (refused is not null) { checks[whole.Schema.IndexOf(ChangeEnvelope.Unchanged)] = row => refused[row] ? mirror.Refusal(changes.Schema.Table) : null; }
        var rows = UnholdableValues.Refuse(whole, checks, key, _services.DeadLetters, Name);
        if (rows.Count > 0)
        {
            await stager.AddPartitionAsync(table, "", rows, ct).ConfigureAwait(false);
        }
    }

    /// <summary><paramref name="table"/> without its column <paramref name="name"/> (as it is when it has none).</summary>
    private static ColumnBatch Without(ColumnBatch table, string name)
    {
        var at = table.Schema.IndexOf(name);
        if (at < 0) { return table; }
        var keep = Enumerable.Range(0, table.Schema.Fields.Count).Where(c => c != at).ToList();
        var schema = new TableSchema(table.Schema.Table, keep.Select(c => table.Schema.Fields[c]).ToList()) { Key = table.Schema.Key };
        var verbatim = table.HasVerbatim ? keep.Select(table.Verbatim).ToArray() : null;
        return new ColumnBatch(schema, keep.Select(c => table.Columns[c]).ToArray(), null, table.Count, verbatim);
    }

    /// <summary>The key of a mirrored table, checked against its rows: a mirror needs the change envelope and every key column.</summary>
    private IReadOnlyList<string> MirrorKeyOf(TableSchema schema)
    {
        var missing = new[] { ChangeEnvelope.Op, ChangeEnvelope.Lsn, ChangeEnvelope.Seq }.Where(c => schema.IndexOf(c) < 0).ToList();
        if (missing.Count > 0)
        {
            throw new SluiceException($"lake sink {Name} (mode: mirror): table '{schema.Table}' has no {string.Join(", ", missing)}: a mirror applies changes, and only a change source (postgres_cdc) sends them");
        }

        // Not given: the source table's primary key (or replica identity index), as the postgres and clickhouse mirrors take it.
        var key = _options.Keys.TryGetValue(schema.Table, out var given) ? given : schema.Key;
        if (key.Count == 0)
        {
            throw new SluiceException($"lake sink {Name} (mode: mirror): table '{schema.Table}' has no primary key (nor a replica identity index) in the source, so its rows cannot be told apart; give the source table a primary key, or its key columns here, e.g. keys: {{ \"{schema.Table}\": [id] }}");
        }

        if (key.FirstOrDefault(k => schema.IndexOf(k) < 0) is { } absent)
        {
            throw new SluiceException($"lake sink {Name} (mode: mirror): keys.{schema.Table} names '{absent}', which is not a column of the table (columns: {string.Join(", ", schema.Fields.Select(f => f.Name).Where(n => !ChangeEnvelope.IsEnvelope(n)))})");
        }

        return key;
    }

    /// <summary>
    /// What the lake's Parquet cannot hold: a NaN or infinity in a DECIMAL column (a decimal with a declared precision),
    /// and <c>infinity</c> in a date or time column (years after 9999 and BC are held: Parquet counts days and
    /// milliseconds since 1970 far beyond .NET's range). The partition column needs a .NET day: its verbatim values are refused.
    /// </summary>
    private static Func<int, string?>? Unholdable(ColumnBatch table, int column, bool partition)
    {
        var field = table.Schema.Fields[column];
        if (table.Verbatim(column) is { } verbatim)
        {
            return row => verbatim[row] is not { } text ? null
                : partition ? $"the lake partitions by the day of {field.Name}, and has days within years 1 to 9999 only"
                : field.Type == FieldType.Date ? (VerbatimTime.TryEpochDays(text, out var d) && d is > int.MinValue and < int.MaxValue ? null : "a Parquet DATE has no infinity")
                : VerbatimTime.TryEpochMillis(text, out var ms) && Math.Abs(ms) < long.MaxValue / 1000 ? null : "a Parquet TIMESTAMP has no infinity (and DuckDB no microsecond count beyond year 294247)";
        }

        if (field.IsDecimal128())
        {
            var exact = table.Strings(column);
            return row => DecimalText.IsNotFinite(exact[row]) ? $"a Parquet DECIMAL({field.Precision},{field.Scale}) has no {exact[row]}" : null;
        }

        return null;
    }

    /// <summary>A day's partition value, formatted once per day rather than once per row (most rows share a few days).</summary>
    private string DayName(DateOnly day)
    {
        if (!_dayNames.TryGetValue(day.DayNumber, out var name))
        {
            if (_dayNames.Count >= 4096) { _dayNames.Clear(); }
            _dayNames[day.DayNumber] = name = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        }

        return name;
    }

    /// <summary>The rows of a table not yet committed: after a crash the batch may start before this sink's checkpoint.</summary>
    private ColumnBatch Unwritten(ColumnBatch table)
    {
        var column = table.Schema.IndexOf(_options.PositionColumn);
        if (_committed is not { } committed || column < 0 || table.Count == 0)
        {
            return table;
        }

        var positions = (long?[])table.Columns[column];
        var keep = new List<int>(table.Count);
        for (var i = 0; i < table.Count; i++)
        {
            // A row's position is where its event starts; the checkpoint is where the last committed event ended.
            if (positions[i] is not { } p || p >= committed) { keep.Add(i); }
        }

        if (keep.Count == table.Count)
        {
            return table;
        }

        return table.Gather(keep.ToArray());
    }

    private LakeTable TableFor(TableSchema schema, IReadOnlyList<string>? mirrorKey = null)
    {
        var name = _options.Tables.TryGetValue(schema.Table, out var renamed) ? renamed : schema.Table;
        var signature = string.Join(',', schema.Fields.Select(f => $"{f.Name}:{f.TypeText()}")) + (mirrorKey is null ? "" : $"|key:{string.Join(',', mirrorKey)}");
        lock (_tablesGate)
        {
            if (_tables.TryGetValue(schema.Table, out var known) && known.Signature == signature)
            {
                return known.Table;
            }

            var columns = schema.Fields.Select(f => f with { Required = false }).ToList();
            var table = mirrorKey is null
                ? new LakeTable(_options.Zone, name, "date", FieldType.Date, columns)
                : LakeTable.Unpartitioned(_options.Zone, name, columns) with { MirrorKey = mirrorKey };
            _services.Lake.Register(table);
            _tables[schema.Table] = (table, signature);
            return table;
        }
    }

    private async Task CompactLoopAsync(CancellationToken ct)
    {
        var compactor = new LakeCompactor(_services.Lake);
        var folder = new MirrorCompactor(_services.Lake);
        var lastSweep = _services.Time.GetUtcNow();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.CompactInterval, _services.Time, ct).ConfigureAwait(false);
                List<LakeTable> tables;
                lock (_tablesGate) { tables = _tables.Values.Select(t => t.Table).ToList(); }
                foreach (var table in tables)
                {
                    // A mirror's files are folded into its current rows rather than merged: merging would keep every
                    // superseded change, and reads would scan the whole history.
                    if (table.IsMirror)
                    {
                        var folded = folder.Fold(table, _options.CompactMinFiles, Volatile.Read(ref _settledBelow) is > 0 and var settled ? settled : null, ct);
                        if (folded > 0) { LakeSinkLog.Folded(_log, table.QualifiedName, folded); }
                        continue;
                    }

                    var merged = compactor.Compact(table, _options.CompactMinFiles, _options.CompactSmallRows, ct);
                    if (merged > 0) { LakeSinkLog.Compacted(_log, table.QualifiedName, merged); }
                }

                if (_services.Time.GetUtcNow() - lastSweep > TimeSpan.FromMinutes(1))
                {
                    _services.Lake.SweepOrphans();
                    lastSweep = _services.Time.GetUtcNow();
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is IOException or SluiceException or DuckDB.NET.Data.DuckDBException or Microsoft.Data.Sqlite.SqliteException)
            {
                // Compaction is an optimisation: a failed pass leaves the small files as they were, and the next pass tries again.
                LakeSinkLog.CompactionFailed(_log, e, _options.Zone);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_compaction is not null)
        {
            await _compaction.ConfigureAwait(false);
        }

        _stop.Dispose();
    }
}

internal static partial class LakeSinkLog
{
    [LoggerMessage(5301, LogLevel.Debug, "{Table}: merged {Files} small files")]
    public static partial void Compacted(ILogger logger, string table, int files);

    [LoggerMessage(10200, LogLevel.Debug, "{Table}: folded {Files} files into the mirror's current rows")]
    public static partial void Folded(ILogger logger, string table, int files);

    [LoggerMessage(24800, LogLevel.Information, "Lake sink {Sink}: {Skipped} of the batch's {Events} events of log {Log} were committed already (by a worker that died before acknowledging them); written once, not again")]
    public static partial void ReplaySkipped(ILogger logger, string sink, long skipped, long events, string log);

    [LoggerMessage(24801, LogLevel.Information, "Lake sink {Sink}: {Reason}; looking again at what is committed")]
    public static partial void ReplayRaced(ILogger logger, string sink, string reason);

    [LoggerMessage(24670, LogLevel.Debug, "Lake sink {Sink}: {Older} of the write's {Changes} changes of {Table} are at or below what the mirror holds for their keys (stored late by the stream, or copies); left out")]
    public static partial void OlderThanHeld(ILogger logger, string sink, string table, int older, int changes);

    [LoggerMessage(5302, LogLevel.Warning, "Compaction in zone {Zone} failed; the small files stay as they are until the next pass")]
    public static partial void CompactionFailed(ILogger logger, Exception error, string zone);
}
