using Sluice.Core;
using Sluice.Core.Schema;
using static Sluice.Connectors.ClickHouse.ClickHouseClient;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// <c>mode: mirror</c> (docs/CDC.md, "Mirrors"): a ReplacingMergeTree sorted by the source table's key, versioned by
/// <c>_lsn</c>, with a <c>_deleted</c> flag. An upsert is a row, a delete a row flagged deleted, a truncate a flagged
/// row for every key alive before it; <c>SELECT ... FINAL WHERE _deleted = 0</c> (the view <c>&lt;table&gt;_current</c>)
/// reads the current state. 18.16 has no <c>is_deleted</c> engine parameter and no lightweight deletes, and its
/// mutations are asynchronous, so deleting is writing: rows only ever get newer versions, and a replay of older
/// changes never wins over them. A change's place is (<c>_lsn</c>, <c>_seq</c>), but 18.16's version is one UInt
/// column and the two do not fit in 64 bits; among rows of one <c>_lsn</c> (one transaction) a merge and FINAL keep
/// the last inserted. So no row is inserted for a key that already holds its change or a later one by
/// (<c>_lsn</c>, <c>_seq</c>) (<see cref="InsertNewerAsync"/>): the last inserted of a transaction's rows of a key is
/// then always its latest change, and a copy of an earlier change of the transaction, in a later batch, is left out.
/// </summary>
public sealed partial class ClickHouseSink
{
    /// <summary>The flag column of a mirror: 1 on the row that records a key's delete (or a truncate).</summary>
    public const string Deleted = "_deleted";

    /// <summary>The view over a mirror that reads the current state: its live rows, collapsed with <c>FINAL</c>.</summary>
    public string CurrentView => $"{Quote(_options.Database)}.{Quote(_options.Table + "_current")}";

    private string? _viewColumns;

    private static bool MirrorNotNull(string column) =>
        column == Deleted || column.StartsWith(MirrorSegment.FromPrefix, StringComparison.Ordinal) || column.StartsWith(MirrorSegment.KeepPrefix, StringComparison.Ordinal);

    private async Task WriteMirrorAsync(ColumnBatch changes, CancellationToken ct)
    {
        var key = changes.Schema.Key;
        if (!MirrorChanges.IsChangeTable(changes.Schema) || key.Count == 0)
        {
            throw new SluiceException(
                $"clickhouse sink '{_options.Name}' (mode: mirror): table '{changes.Schema.Table}' " +
                (key.Count == 0 && MirrorChanges.IsChangeTable(changes.Schema)
                    ? "has no primary key (nor a replica identity index) in the source, so its rows cannot be told apart; give the source table a primary key, or use mode: changes."
                    : "is not a change stream (no _op, _lsn, _seq columns); mode: mirror needs the rows of a postgres_cdc source."));
        }

        if (_orderBy.Count == 0) { _orderBy = key; }
        else if (!_orderBy.SequenceEqual(key, StringComparer.Ordinal))
        {
            throw new SluiceException($"clickhouse sink '{_options.Name}' (mode: mirror): the key of '{changes.Schema.Table}' changed from ({string.Join(", ", _orderBy)}) to ({string.Join(", ", key)}); a mirror's sorting key cannot change: drop {_options.Database}.{_options.Table} to have it created again.");
        }

        var state = MirrorChanges.StateSchema(changes.Schema);
        await RetryAsync(() => EnsureTableAsync(WithDeleted(state), ct), ct).ConfigureAwait(false);
        await RetryAsync(() => EnsureViewAsync(ct), ct).ConfigureAwait(false);
        await RetryAsync(() => EnsureGoneAsync(ct), ct).ConfigureAwait(false);
        // In position order, each change once (as the plan applies them), so the last change is the newest.
        var holdable = MirrorChanges.InPositionOrder(Holdable(changes), key);
        var segments = MirrorChanges.Plan(holdable, key);
        var endsInDelete = holdable.Count > 0 && holdable.Strings(holdable.Schema.IndexOf(Core.Schema.ChangeEnvelope.Op))[^1] == Core.Schema.ChangeEnvelope.Delete;
        foreach (var segment in segments)
        {
            if (segment.Upserts.Count > 0)
            {
                if (segment.KeptColumns.Count == 0) { await InsertNewerAsync(Flagged(segment.Upserts, false), key, ct).ConfigureAwait(false); }
                else { await UpsertKeepingAsync(segment, key, ct).ConfigureAwait(false); }
            }

            if (endsInDelete && ReferenceEquals(segment, segments[^1]) && segment.TruncateAt is null && segment.Deletes.Count > 0)
            {
                await KeepGoneAsync(segment.Deletes.Gather([segment.Deletes.Count - 1]), key, ct).ConfigureAwait(false);
            }

            if (segment.Deletes.Count > 0) { await InsertNewerAsync(Flagged(segment.Deletes, true), key, ct).ConfigureAwait(false); }
            if (segment.TruncateAt is { } at)
            {
                await RetryAsync(() => _client.QueryAsync(TruncateSql(key, at), ct), ct).ConfigureAwait(false);
                await RetryAsync(() => _client.QueryAsync(_unfenced.Length == 0
                    ? $"INSERT INTO {TruncatedTable} VALUES ({at.Lsn}, {at.Seq})"
                    : $"INSERT INTO {TruncatedTable} SELECT toUInt64({at.Lsn}), toInt64({at.Seq}) WHERE 1{_unfenced}", ct), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A flagged row, at the truncate's position, for every key alive before it: the table reads as empty, and a replay of older rows stays hidden.</summary>
    private string TruncateSql(IReadOnlyList<string> key, ChangePosition at)
    {
        var keys = string.Join(", ", key.Select(Quote));
        var (lsn, seq) = (Quote(Core.Schema.ChangeEnvelope.Lsn), Quote(Core.Schema.ChangeEnvelope.Seq));
        return $"INSERT INTO {QualifiedTable} ({keys}, {lsn}, {seq}, {Quote(Deleted)}) " +
               $"SELECT {keys}, toUInt64({at.Lsn}), toInt64({at.Seq}), 1 FROM {QualifiedTable} FINAL " +
               $"WHERE {Quote(Deleted)} = 0 AND ({lsn} < {at.Lsn} OR ({lsn} = {at.Lsn} AND ifNull({seq}, 0) < {at.Seq})){_unfenced}";
    }

    /// <summary>
    /// Inserts <paramref name="rows"/> (upserts, or flagged deletes) but those whose key already holds their change or
    /// a later one by (<c>_lsn</c>, <c>_seq</c>): one request, the rows as external data, the stored rows read only for
    /// their keys. The version (<c>_lsn</c>) would let a later change of another transaction win anyway, but among one
    /// transaction's rows of a key the last inserted wins, and that must be the change of the highest <c>_seq</c>.
    /// </summary>
    private async Task InsertNewerAsync(ColumnBatch rows, IReadOnlyList<string> key, CancellationToken ct)
    {
        var fields = rows.Schema.Fields;
        // By position (c0, c1, ...): 18.16 splits an external table's structure at every space and comma (UpsertKeepingAsync).
        var structure = string.Join(", ", fields.Select((f, i) => $"c{i} {StageTypeOf(f)}"));
        var stage = $"(SELECT {string.Join(", ", fields.Select((f, i) => $"c{i} AS {Quote(f.Name)}"))} FROM {Stage})";
        var columns = string.Join(", ", fields.Select(f => Quote(f.Name)));
        var keys = string.Join(", ", key.Select(Quote));
        var sql = $"INSERT INTO {QualifiedTable} ({columns}) SELECT {columns} FROM {stage} ANY LEFT JOIN ({Stored(keys, stage)}) USING ({keys}) WHERE NOT ({HoldsItOrLater}) AND NOT {BelowFloor}{_unfenced}";
        var encoded = ClickHouseRowBinary.Encode(rows, fields.Select(f => NotNull(f.Name)).ToList(), fields.Select(f => f.Name == _options.Version).ToList(), _options.Mirror);
        await RetryAsync(() => _client.QueryWithTableAsync(sql, Stage, structure, encoded.WrittenMemory, ct), ct).ConfigureAwait(false);
    }

    /// <summary>The stored (FINAL) row's position of each staged key, live or flagged deleted: <c>_sluice_cur</c> is 1 where there is one (an unmatched ANY LEFT JOIN reads 0).</summary>
    private string Stored(string keys, string stage) =>
        $"SELECT {keys}, {Quote(Core.Schema.ChangeEnvelope.Lsn)} AS _sluice_cur_lsn, ifNull({Quote(Core.Schema.ChangeEnvelope.Seq)}, 0) AS _sluice_cur_seq, 1 AS _sluice_cur" +
        $" FROM {QualifiedTable} FINAL WHERE ({keys}) IN (SELECT {keys} FROM {stage})";

    /// <summary>True where the staged row's key already holds its change or a later one (<see cref="Stored"/> joined in).</summary>
    private static string HoldsItOrLater =>
        $"_sluice_cur = 1 AND (_sluice_cur_lsn > {Quote(Core.Schema.ChangeEnvelope.Lsn)} OR (_sluice_cur_lsn = {Quote(Core.Schema.ChangeEnvelope.Lsn)} AND _sluice_cur_seq >= ifNull({Quote(Core.Schema.ChangeEnvelope.Seq)}, 0)))";

    /// <summary>
    /// The table's truncates (<c>&lt;table&gt;_sluice_truncated</c>: <c>_lsn</c>, <c>_seq</c>, one row each): the latest
    /// is the table's floor. A change below it is older than a truncate already applied, a replay or one stored late, and
    /// is not written: a key the truncate found alive has its flagged row there, but a key it did not (inserted by that
    /// late change) would otherwise come back.
    /// </summary>
    private string TruncatedTable => $"{Quote(_options.Database)}.{Quote(_options.Table + "_sluice_truncated")}";

    /// <summary>True where the row's position is below the table's floor (none yet: 0, below every position).</summary>
    private string BelowFloor
    {
        get
        {
            var (lsn, seq) = (Quote(Core.Schema.ChangeEnvelope.Lsn), Quote(Core.Schema.ChangeEnvelope.Seq));
            var floorLsn = $"(SELECT max({lsn}) FROM {TruncatedTable})";
            return $"({lsn} < {floorLsn} OR ({lsn} = {floorLsn} AND ifNull({seq}, 0) < (SELECT maxIf({seq}, {lsn} = {floorLsn}) FROM {TruncatedTable})))";
        }
    }

    /// <summary>The name of the external table a keeping upsert sends its staged rows as.</summary>
    private const string Stage = "_sluice_stage";

    /// <summary>
    /// The table holding the row removed by the last batch that ended in a delete (<c>&lt;table&gt;_sluice_gone</c>): it
    /// may be the old key of a key change whose insert, a TOASTed value not carried, starts the next batch. The mirror's
    /// columns, <c>ReplacingMergeTree(_lsn) ORDER BY tuple()</c>: one row after merges (the latest), read with FINAL.
    /// </summary>
    private string GoneTable => $"{Quote(_options.Database)}.{Quote(_options.Table + "_sluice_gone")}";

    private HashSet<string>? _goneColumns;

    /// <summary>Creates the gone and truncated tables, and gives the gone table the columns the mirror gained.</summary>
    private async Task EnsureGoneAsync(CancellationToken ct)
    {
        if (_goneColumns is not null && _columns!.Keys.All(_goneColumns.Contains)) { return; }
        await _client.QueryAsync($"CREATE TABLE IF NOT EXISTS {GoneTable} AS {QualifiedTable} ENGINE = ReplacingMergeTree({Quote(Core.Schema.ChangeEnvelope.Lsn)}) ORDER BY tuple()", ct).ConfigureAwait(false);
        await _client.QueryAsync($"CREATE TABLE IF NOT EXISTS {TruncatedTable} ({Quote(Core.Schema.ChangeEnvelope.Lsn)} UInt64, {Quote(Core.Schema.ChangeEnvelope.Seq)} Int64) ENGINE = MergeTree ORDER BY tuple()", ct).ConfigureAwait(false);
        var existing = await _client.QueryAsync(
            $"SELECT name FROM system.columns WHERE database = {Literal(_options.Database)} AND table = {Literal(_options.Table + "_sluice_gone")} FORMAT TabSeparated", ct).ConfigureAwait(false);
        var columns = existing.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, type) in _columns!.Where(c => !columns.Contains(c.Key)))
        {
            try
            {
                await _client.QueryAsync($"ALTER TABLE {GoneTable} ADD COLUMN {Quote(name)} {type}", ct).ConfigureAwait(false);
            }
            catch (ClickHouseException e) when (e.Message.Contains("already exists", StringComparison.Ordinal))
            {
            }

            columns.Add(name);
        }

        _goneColumns = columns;
    }

    /// <summary>
    /// Before the batch's last change, a delete, is written: the row it removes (as the batch left it) goes to the gone
    /// table at the delete's position, where a key change's insert at the next position finds it (<see cref="UpsertKeepingAsync"/>).
    /// </summary>
    private async Task KeepGoneAsync(ColumnBatch delete, IReadOnlyList<string> key, CancellationToken ct)
    {
        var fields = delete.Schema.Fields;
        var structure = string.Join(", ", fields.Select((f, i) => $"c{i} {StageTypeOf(f)}"));
        var (lsn, seq) = (Core.Schema.ChangeEnvelope.Lsn, Core.Schema.ChangeEnvelope.Seq);
        var stage = $"(SELECT {string.Join(", ", fields.Select((f, i) => $"c{i} AS {Quote(f.Name is var n && (n == lsn || n == seq) ? "_sluice_gone" + n : n)}"))} FROM {Stage})";
        var keys = string.Join(", ", key.Select(Quote));
        var columns = _columns!.Keys.ToList();
        var values = columns.Select(c => c == lsn || c == seq ? Quote("_sluice_gone" + c) : Quote(c));
        var sql = $"INSERT INTO {GoneTable} ({string.Join(", ", columns.Select(Quote))}) SELECT {string.Join(", ", values)} FROM " +
                  $"(SELECT * FROM {QualifiedTable} FINAL WHERE {Quote(Deleted)} = 0 AND ({keys}) IN (SELECT {keys} FROM {stage})) ANY INNER JOIN {stage} USING ({keys})" +
                  (_unfenced.Length == 0 ? "" : $" WHERE 1{_unfenced}");
        var encoded = ClickHouseRowBinary.Encode(delete, fields.Select(f => NotNull(f.Name)).ToList(), fields.Select(f => f.Name == _options.Version).ToList(), _options.Mirror);
        await RetryAsync(() => _client.QueryWithTableAsync(sql, Stage, structure, encoded.WrittenMemory, ct), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Upserts of which some keep columns as stored (values an update did not carry): sent with the statement as
    /// external data (one request) and copied with the stored values joined in, so every value read is the one before
    /// this segment. A row whose key already holds this change or a later one (a replay) is left out: its stored values
    /// may have gone. The stored rows are read only for the staged keys, so a batch costs what it holds, not the table.
    /// </summary>
    private async Task UpsertKeepingAsync(MirrorSegment segment, IReadOnlyList<string> key, CancellationToken ct)
    {
        var staged = MirrorChanges.Staged(segment);
        var stagedFields = staged.Schema.Fields;
        // By position (c0, c1, ...) with comma-free types: 18.16 splits an external table's structure at every space
        // and comma, so neither a column's name nor Decimal(P, S) could go in it as they are.
        var structure = string.Join(", ", stagedFields.Select((f, i) => $"c{i} {StageTypeOf(f)}"));
        var stage = $"(SELECT {string.Join(", ", stagedFields.Select((f, i) => $"c{i} AS {Quote(f.Name)}"))} FROM {Stage})";

        var fields = segment.Upserts.Schema.Fields;
        var kept = segment.KeptColumns.Select(c => fields[c].Name).ToList();
        var (lsn, seq) = (Quote(Core.Schema.ChangeEnvelope.Lsn), Quote(Core.Schema.ChangeEnvelope.Seq));
        var keys = string.Join(", ", key.Select(Quote));
        var fromKeys = string.Join(", ", key.Select(k => Quote(MirrorSegment.FromPrefix + k)));
        var (fromLsn, fromSeq) = (Quote(MirrorSegment.FromPrefix + Core.Schema.ChangeEnvelope.Lsn), Quote(MirrorSegment.FromPrefix + Core.Schema.ChangeEnvelope.Seq));
        // The row's own key as stored, when live and holding the change that names the source of its kept values or a
        // later one (_sluice_self): that change was applied already (a copy redelivered before newer changes of the
        // key), so its values are the version before this upsert, whatever the old key holds now.
        var self = $"_sluice_cur = 1 AND _sluice_cur_deleted = 0 AND (toInt64(_sluice_cur_lsn) > {fromLsn} OR (toInt64(_sluice_cur_lsn) = {fromLsn} AND _sluice_cur_seq >= {fromSeq}))";
        var newer =
            $"SELECT {string.Join(", ", stagedFields.Select(f => Quote(f.Name)))}, {self} AS _sluice_self{string.Concat(kept.Select(c => $", {Quote("_sluice_self_" + c)}"))} FROM {stage} ANY LEFT JOIN " +
            $"(SELECT {keys}, {lsn} AS _sluice_cur_lsn, ifNull({seq}, 0) AS _sluice_cur_seq, 1 AS _sluice_cur, {Quote(Deleted)} AS _sluice_cur_deleted" +
            $"{string.Concat(kept.Select(c => $", {Quote(c)} AS {Quote("_sluice_self_" + c)}"))} FROM {QualifiedTable} FINAL " +
            $"WHERE ({keys}) IN (SELECT {keys} FROM {stage})) USING ({keys}) " +
            $"WHERE NOT ({HoldsItOrLater}) AND NOT {BelowFloor}{_unfenced}";
        var stored = $"SELECT {string.Join(", ", key.Select(k => $"{Quote(k)} AS {Quote(MirrorSegment.FromPrefix + k)}").Concat(kept.Select(c => $"{Quote(c)} AS {Quote("_sluice_old_" + c)}")))}, 1 AS _sluice_found " +
                     $"FROM {QualifiedTable} FINAL WHERE {Quote(Deleted)} = 0 AND ({keys}) IN (SELECT {fromKeys} FROM {stage})";
        // When the stored row is not there: the row the last batch ending in a delete removed, if that delete is the
        // change that names it (a key change replayed) or the one just before (a key change whose delete ended that batch).
        var gone = $"SELECT toInt64({lsn}) AS {fromLsn}, arrayJoin([ifNull({seq}, 0), ifNull({seq}, 0) + 1]) AS {fromSeq}" +
                   $"{string.Concat(kept.Select(c => $", {Quote(c)} AS {Quote("_sluice_gone_" + c)}"))} FROM {GoneTable} FINAL";
        var values = fields.Select(f => kept.Contains(f.Name)
            ? $"if({Quote(MirrorSegment.KeepPrefix + f.Name)} = 1, if(_sluice_self = 1, {Quote("_sluice_self_" + f.Name)}, if(_sluice_found = 1, {Quote("_sluice_old_" + f.Name)}, {Quote("_sluice_gone_" + f.Name)})), {Quote(f.Name)})"
            : Quote(f.Name));
        // 18.16 takes one JOIN per SELECT: the stored rows, then (around it) the gone row.
        var sql = $"INSERT INTO {QualifiedTable} ({string.Join(", ", fields.Select(f => Quote(f.Name)))}, {Quote(Deleted)}) " +
                  $"SELECT {string.Join(", ", values)}, 0 FROM (SELECT * FROM ({newer}) ANY LEFT JOIN ({stored}) USING ({fromKeys})) ANY LEFT JOIN ({gone}) USING ({fromLsn}, {fromSeq})";
        var encoded = ClickHouseRowBinary.Encode(staged, stagedFields.Select(f => NotNull(f.Name)).ToList(), stagedFields.Select(f => f.Name == _options.Version).ToList(), _options.Mirror);
        await RetryAsync(() => _client.QueryWithTableAsync(sql, Stage, structure, encoded.WrittenMemory, ct), ct).ConfigureAwait(false);
    }

    /// <summary>The type of a staged column: <see cref="TypeOf"/>, with Decimal(P, S) as Decimal32/64/128(S), which is the same RowBinary.</summary>
    private string StageTypeOf(FieldSpec field)
    {
        var type = TypeOf(field);
        if (!field.IsDecimal128()) { return type; }
        var bits = field.Precision <= 9 ? 32 : field.Precision <= 18 ? 64 : 128;
        return type.Replace(
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Decimal({field.Precision}, {field.Scale})"),
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Decimal{bits}({field.Scale})"),
            StringComparison.Ordinal);
    }

    /// <summary>Creates (or, when the table gained columns, re-creates) the view that reads the current state.</summary>
    private async Task EnsureViewAsync(CancellationToken ct)
    {
        var columns = string.Join(", ", _columns!.Keys.Where(c => c != Deleted).Select(Quote));
        if (_viewColumns == columns) { return; }
        var existing = await _client.QueryAsync(
            $"SELECT name FROM system.columns WHERE database = {Literal(_options.Database)} AND table = {Literal(_options.Table + "_current")} FORMAT TabSeparated", ct).ConfigureAwait(false);
        if (string.Join(", ", existing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Quote)) != columns)
        {
            // 18.16 has no CREATE OR REPLACE VIEW: for a moment between the two, the view is missing.
            await _client.QueryAsync($"DROP TABLE IF EXISTS {CurrentView}", ct).ConfigureAwait(false);
            await _client.QueryAsync($"CREATE VIEW {CurrentView} AS SELECT {columns} FROM {QualifiedTable} FINAL WHERE {Quote(Deleted)} = 0", ct).ConfigureAwait(false);
        }

        _viewColumns = columns;
    }

    private static TableSchema WithDeleted(TableSchema schema) =>
        new(schema.Table, schema.Fields.Append(new FieldSpec(Deleted, FieldType.Boolean, true)).ToList()) { Key = schema.Key };

    /// <summary>The rows with the <see cref="Deleted"/> flag set to <paramref name="deleted"/>.</summary>
    private static ColumnBatch Flagged(ColumnBatch rows, bool deleted)
    {
        var columns = rows.Columns.Append(Enumerable.Repeat((bool?)deleted, rows.Count).ToArray()).ToArray();
        var verbatim = Enumerable.Range(0, rows.Schema.Fields.Count).Select(rows.Verbatim).Append(null).ToArray();
        return new ColumnBatch(WithDeleted(rows.Schema), columns, null, rows.Count, verbatim);
    }
}
