using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>The <c>postgres</c> sink type: a pipeline's tables into PostgreSQL, idempotent on each table's key, or kept as mirrors of a change-data-capture source's tables.</summary>
public sealed class PostgresSinkType() : SinkType<PostgresSinkOptions>("postgres")
{
    protected override PostgresSinkOptions ParseOptions(ConfigMap map, RecipeContext recipe) => PostgresSinkOptions.Parse(map);

    protected override IBatchSink Create(PostgresSinkOptions options, string recipe, IEngineServices services) => new PostgresSink(services, options);

    protected override ChangeStreamUse ChangeStream(PostgresSinkOptions options, ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new($"postgres:{options.Schema}", options.Mirror ? "mode: mirror" : null, _ => true);
    }
}

/// <summary>
/// Writes each batch in one transaction, per table one <c>INSERT ... SELECT ... FROM unnest(...) ON CONFLICT (key) DO
/// UPDATE</c> of the last row of each key, with the rows as array parameters (<see cref="PgUnnest"/>): one round trip,
/// and the commit. The last write of a key wins, in stream order. A batch written again after a crash writes the same
/// values again and changes nothing, so
/// the pipeline's checkpoint (recorded after the commit) can trail the data safely. Tables are created (and new columns
/// added) from the batch's schema. Transient failures (<see cref="PgFailures"/>) are retried with doubling pauses, up to <c>attempts</c>. With <c>mode: mirror</c> each
/// table is kept as the current state of its source table instead (<see cref="PostgresMirror"/>).
/// </summary>
public sealed class PostgresSink : IBatchSink
{
    private readonly IEngineServices _services;
    private readonly PostgresSinkOptions _options;
    private readonly NpgsqlDataSource _source;
    private readonly ILogger _log;
    private readonly TransientRetry _retry;
    private readonly HashSet<string> _ready = new(StringComparer.Ordinal);
    private readonly HashSet<string> _marksReady = new(StringComparer.Ordinal);
    // A mirror table's floor (its last truncate's position) as this sink's last committed write left it (PostgresMirror.TryStatements).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ChangePosition> _applied = new(StringComparer.Ordinal);
    // When a mirror table's tombstones are next pruned below the low-water mark (PostgresMirror): one prune per rise,
    // at most one a second.
    private readonly PruneSchedule _prunes;

    public PostgresSink(IEngineServices services, PostgresSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _options = options;
        _source = NpgsqlDataSource.Create(options.ConnectionString());
        _prunes = new PruneSchedule(PruneEvery, services.Time);
        _log = services.Logging.CreateLogger("Sluice.PostgresSink");
        _retry = new TransientRetry($"postgres sink {Name}", options.Retry, services.Time, PgFailures.IsTransient)
        {
            Retrying = a => PostgresSinkLog.Retrying(_log, a.Error, Name, a.Attempt, a.Delay.TotalMilliseconds),
        };
    }

    public string Name => $"postgres:{_options.Schema}";

    /// <summary>Batches waiting are copied in one transaction (up to 50,000 rows, as the lake sink).</summary>
    public SinkJoining Joining => SinkJoining.Waiting(50_000);

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        await _retry.RunAsync(token => WriteOnceAsync(batch, checkpointKey, token), ct).ConfigureAwait(false);
    }

    private async Task WriteOnceAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        var connection = await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            if (_options.Mirror && batch.Fence is null && await TryMirrorAtOnceAsync(connection, batch, ct).ConfigureAwait(false))
            {
                return;
            }

            var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var created = new List<string>();
                var positions = new List<(string Table, ChangePosition? Position)>();
                var committed = false;
                try
                {
                    foreach (var table in batch.Tables.Where(t => t.Count > 0))
                    {
                        await WriteTableAsync(connection, table, created, positions, batch.Fence is not null, batch.SettledBelow, ct).ConfigureAwait(false);
                    }

                    string? marks = null;
                    if (batch.Fence is { } fence)
                    {
                        // Last before the commit: the marks' row locks, which a new owner's write waits on, are held shortest.
                        marks = await PgPartitionMarks.RecordAsync(connection, _options.Schema, Name, checkpointKey, fence, _marksReady, ct).ConfigureAwait(false);
                    }

                    await tx.CommitAsync(ct).ConfigureAwait(false);
                    committed = true;
                    // Only now do the tables exist for sure: a rolled-back creation is tried again with the next attempt.
                    _ready.UnionWith(created);
                    if (marks is not null) { _marksReady.Add(marks); }
                }
                finally
                {
                    // Known after the commit, and only then; after a failure (did it commit?) the next write reads them again.
                    foreach (var (table, position) in positions) { Applied(table, committed ? position : null); }
                }
            }
        }
    }

    /// <summary>
    /// A mirror batch whose tables this sink knows (created, and their floors as its own last commits left them) in
    /// one round trip: the statements of every table as one <see cref="NpgsqlBatch"/>, which runs as one implicit
    /// transaction, instead of the three of a transaction of its own (read the floors, write, commit). False, with
    /// nothing written, when a table is not known or its floor was moved meanwhile by another writer.
    /// </summary>
    private async Task<bool> TryMirrorAtOnceAsync(NpgsqlConnection connection, RecordBatch batch, CancellationToken ct)
    {
        var statements = new List<NpgsqlBatchCommand>();
        // A table's floor as the statements before leave it: a batch may hold several runs of one table.
        var positions = new Dictionary<string, ChangePosition?>(StringComparer.Ordinal);
        foreach (var table in batch.Tables.Where(t => t.Count > 0))
        {
            var name = TableName(table);
            var target = Target(name);
            var applied = positions.TryGetValue(target, out var known) ? known : _applied.TryGetValue(target, out var stored) ? stored : null;
            if (applied is null ||
                !new PostgresMirror(this, connection, _options.Schema, name).TryStatements(table, applied.Value, batch.SettledBelow, statements, out var position))
            {
                return false;
            }

            positions[target] = position;
        }

        try
        {
            await ExecAsync(connection, statements, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (PostgresMirror.IsStale(e))
        {
            // Nothing of it was applied (the batch's implicit transaction rolled back): the long way reads the floors.
            foreach (var (table, _) in positions) { Applied(table, null); }
            return false;
        }
        catch
        {
            foreach (var (table, _) in positions) { Applied(table, null); }
            throw;
        }

        foreach (var (table, position) in positions) { Applied(table, position); }
        return true;
    }

    /// <summary>Records a mirror table's floor as this sink's committed write left it (null: not known, read it again).</summary>
    private void Applied(string target, ChangePosition? position)
    {
        if (position is { } p) { _applied[target] = p; }
        else { _applied.TryRemove(target, out _); }
    }

    private string TableName(ColumnBatch rows) => _options.Tables.TryGetValue(rows.Schema.Table, out var renamed) ? renamed : rows.Schema.Table;

    private string Target(string name) => $"{Quote(_options.Schema)}.{Quote(name)}";

    private async Task WriteTableAsync(NpgsqlConnection connection, ColumnBatch rows, List<string> created, List<(string Table, ChangePosition? Position)> positions, bool fenced, long? settled, CancellationToken ct)
    {
        var name = TableName(rows);
        if (_options.Mirror)
        {
            // Not known until it commits: a failure before then must not leave an older position known.
            Applied(Target(name), null);
            positions.Add((Target(name), await new PostgresMirror(this, connection, _options.Schema, name).ApplyAsync(rows, settled, created, ct).ConfigureAwait(false)));
            return;
        }

        if (!_options.Keys.TryGetValue(rows.Schema.Table, out var key))
        {
            throw new SluiceException($"postgres sink {Name}: no key for table '{rows.Schema.Table}'; add it under keys: (for example {rows.Schema.Table}: [{string.Join(", ", rows.Schema.Fields.Take(2).Select(f => f.Name))}])");
        }

        var target = Target(name);
        await EnsureTableAsync(connection, target, rows.Schema, key, created, ct).ConfigureAwait(false);
        // A change stream's truncate (a TRUNCATE in the source, or a snapshot taken again: docs/CDC.md) has no key, and a
        // keyed table cannot hold it as a row (its key would be null: CI's ClusterWorkerHoldsTests failed the pipeline
        // so). It removes every key's row older than itself, in the same round trip as the batch's changes after it. A
        // replay removes nothing newer: the rows it left are at or above it.
        NpgsqlBatchCommand? truncate = null;
        if (AfterTruncate(rows) is { } cut)
        {
            truncate = new NpgsqlBatchCommand(
                $"DELETE FROM {target} WHERE ({Quote(ChangeEnvelope.Lsn)}, {Quote(ChangeEnvelope.Seq)}) < ({cut.At.Lsn}, {cut.At.Seq})");
            if (cut.Rows.Count == 0)
            {
                await ExecAsync(connection, [truncate], ct).ConfigureAwait(false);
                return;
            }

            rows = cut.Rows;
        }

        var insert = new NpgsqlBatchCommand();
        // In cluster partitions a key's newest event is the one of the highest _offset (its stream sequence), not the last
        // in the batch: a redelivery of older events (their ack wait ran out while their batch waited for the sinks) can
        // come after newer ones in one batch or one joined write, and the last row would then put the older version in
        // place of the newer, which the guard below keeps out of every later write (ClusterPartitionTests lost versions so).
        var newest = fenced && rows.Schema.IndexOf(OffsetColumn) is var offset and >= 0 && rows.Schema.Fields[offset].Type == FieldType.Integer && !key.Contains(OffsetColumn) ? offset : -1;
        var last = LastPerKey(rows, key, newest);
        var (from, read) = PgUnnest.Rows(insert, last, "s");
        var columns = string.Join(", ", rows.Schema.Fields.Select(f => Quote(f.Name)));
        // The last write of a key wins, as the batches came: a replay writes the same values again, which changes nothing.
        var others = rows.Schema.Fields.Where(f => !key.Contains(f.Name)).Select(f => $"{Quote(f.Name)} = EXCLUDED.{Quote(f.Name)}").ToList();
        var onConflict = others.Count == 0 ? "DO NOTHING" : $"DO UPDATE SET {string.Join(", ", others)}";
        if (fenced && others.Count > 0 && rows.Schema.IndexOf(OffsetColumn) >= 0 && !key.Contains(OffsetColumn))
        {
            // A partition's events, in cluster mode, come back from its oldest unacknowledged one when it changes owner: one
            // its last owner wrote but could not acknowledge must not write over a newer event of its key (one key, one
            // partition: a larger stream sequence is a later event).
            onConflict += $" WHERE {target}.{Quote(OffsetColumn)} <= EXCLUDED.{Quote(OffsetColumn)}";
        }
        insert.CommandText = $"INSERT INTO {target} ({columns}) SELECT {string.Join(", ", read)} FROM {from} ON CONFLICT ({string.Join(", ", key.Select(Quote))}) {onConflict}";
        await ExecAsync(connection, truncate is null ? [insert] : [truncate, insert], ct).ConfigureAwait(false);
    }

    /// <summary>
    /// For a change stream's rows holding a truncate (<c>_op = t</c>): the position of the last one, and the changes
    /// after it (no truncate among them); null when there is none.
    /// </summary>
    internal static (ChangePosition At, ColumnBatch Rows)? AfterTruncate(ColumnBatch rows)
    {
        if (!MirrorChanges.IsChangeTable(rows.Schema)) { return null; }
        var ops = rows.Strings(rows.Schema.IndexOf(ChangeEnvelope.Op));
        var lsn = rows.Column<long>(rows.Schema.IndexOf(ChangeEnvelope.Lsn));
        var seq = rows.Column<long>(rows.Schema.IndexOf(ChangeEnvelope.Seq));
        var at = new ChangePosition[rows.Count];
        ChangePosition? cut = null;
        for (var row = 0; row < rows.Count; row++)
        {
            at[row] = new ChangePosition(lsn[row] ?? 0, seq[row] ?? 0);
            if (ops[row] == ChangeEnvelope.Truncate && (cut is null || at[row] > cut.Value)) { cut = at[row]; }
        }

        if (cut is not { } last) { return null; }
        var after = Enumerable.Range(0, rows.Count).Where(row => ops[row] != ChangeEnvelope.Truncate && at[row] > last).ToArray();
        return (last, rows.Gather(after));
    }

    /// <summary>
    /// One row of each key, in their order: one statement may not update a row twice. The last of the key's rows, or,
    /// with <paramref name="newestBy"/> (the <c>_offset</c> column's index, else -1), the one with the highest value there.
    /// </summary>
    internal static ColumnBatch LastPerKey(ColumnBatch rows, IReadOnlyList<string> key, int newestBy = -1)
    {
        var columns = key.Select(rows.Schema.IndexOf).ToArray();
        var offsets = newestBy >= 0 ? rows.Column<long>(newestBy) : null;
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var row = 0; row < rows.Count; row++)
        {
            var k = string.Join('\u0001', columns.Select(c => Core.DeadLetters.UnholdableValues.Text(rows, c, row)));
            if (offsets is not null && last.TryGetValue(k, out var kept) && (offsets[kept] ?? long.MinValue) > (offsets[row] ?? long.MinValue)) { continue; }
            last[k] = row;
        }

        return last.Count == rows.Count ? rows : rows.Gather(last.Values.Order().ToArray());
    }

    /// <summary>
    /// True when a mirror table's tombstones are to be pruned below <paramref name="mark"/>: it rose since the last
    /// prune this sink planned, and that was <see cref="PruneEvery"/> ago or more (a sink's first is due at once). A
    /// prune rolled back with its batch waits for the next one due, which only keeps tombstones longer.
    /// </summary>
    /// <remarks>
    /// In one process the mark rises with nearly every batch: a prune on each rise adds a statement to nearly every
    /// batch's transaction, for tombstones that this way are kept only a second longer.
    /// </remarks>
    internal bool PruneDue(string table, long mark) => _prunes.Due(table, mark);

    /// <summary>The least time between two prunes of one mirror table's tombstones by this sink.</summary>
    internal static TimeSpan PruneEvery { get; } = TimeSpan.FromSeconds(1);

    /// <summary>True once <paramref name="signature"/> was recorded as created by a committed write; else the caller adds it to <c>created</c> when it creates it.</summary>
    internal bool IsReady(string signature) => _ready.Contains(signature);

    /// <summary>Creates the schema and table on first use, and adds columns a newer schema version brought.</summary>
    internal async Task EnsureTableAsync(NpgsqlConnection connection, string target, TableSchema schema, IReadOnlyList<string> key, List<string> created, CancellationToken ct)
    {
        var signature = Signature(target, schema);
        if (_ready.Contains(signature))
        {
            return;
        }

        foreach (var k in key.Where(k => schema.IndexOf(k) < 0))
        {
            throw new SluiceException($"postgres sink {Name}: key column '{k}' is not in table '{schema.Table}' (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))})");
        }

        // Serialises concurrent creators (two Sluice processes, tests in parallel) for the duration of this transaction.
        await ExecAsync(connection, $"SELECT pg_advisory_xact_lock(hashtext({Literal(target)}))", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {Quote(_options.Schema)}", ct).ConfigureAwait(false);
        var columns = string.Join(", ", schema.Fields.Select(f => $"{Quote(f.Name)} {f.PostgresType()}{(key.Contains(f.Name) ? " NOT NULL" : "")}"));
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {target} ({columns}, PRIMARY KEY ({string.Join(", ", key.Select(Quote))}))", ct).ConfigureAwait(false);
        foreach (var f in schema.Fields)
        {
            await ExecAsync(connection, $"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {Quote(f.Name)} {f.PostgresType()}", ct).ConfigureAwait(false);
        }

        created.Add(signature);
    }

    /// <summary>What <see cref="IsReady"/> knows a table by: its name and its columns' types.</summary>
    internal static string Signature(string target, TableSchema schema) => target + "|" + string.Join(',', schema.Fields.Select(f => f.Name + ":" + f.PostgresType()));

    internal static async Task ExecAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        var cmd = new NpgsqlCommand(sql, connection);
        await using (cmd.ConfigureAwait(false))
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Statements in one round trip, in order (nothing when there are none).</summary>
    internal static async Task ExecAsync(NpgsqlConnection connection, IReadOnlyList<NpgsqlBatchCommand> statements, CancellationToken ct)
    {
        if (statements.Count == 0) { return; }
        var batch = new NpgsqlBatch(connection);
        await using (batch.ConfigureAwait(false))
        {
            foreach (var statement in statements) { batch.BatchCommands.Add(statement); }
            await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>The stream position column of stream sources' rows (the HTTP landing log's offset, a JetStream sequence in cluster mode).</summary>
    private const string OffsetColumn = "_offset";

    internal static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    internal static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    public async ValueTask DisposeAsync() => await _source.DisposeAsync().ConfigureAwait(false);
}

internal static partial class PostgresSinkLog
{
    [LoggerMessage(5401, LogLevel.Warning, "{Sink}: transient failure on attempt {Attempt}; retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, Exception error, string sink, int attempt, double delayMs);
}
