using Npgsql;
using Sluice.Core;
using Sluice.Core.Schema;
using static Sluice.Connectors.Postgres.PostgresSink;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Applies one table's changes to its mirror (<c>mode: mirror</c>, docs/CDC.md "Mirrors") inside the batch's
/// transaction: per segment (<see cref="MirrorChanges"/>), upserts as <c>INSERT ... ON CONFLICT DO UPDATE</c> that only
/// replaces a row holding an earlier change (a row at the same position is this change, applied already: its kept
/// values may be gone from where they came from, a key change's old row), columns the change did not carry taken from
/// the stored row, deletes of rows not newer than the delete, then the truncate. Whether a change is a replay is
/// decided per key, never per table: in cluster mode a change can come after a newer change of another key of its
/// table, in a later batch (docs/SCALING.md, "Mirrors and copies"), and must still be applied. A change is a replay when
/// it is at or below the position the mirror holds for its key: the stored row's (<c>_lsn</c>, <c>_seq</c>) for a live
/// key, the delete's for a deleted one (its tombstone in <c>&lt;schema&gt;._sluice_mirror_deleted</c>, so a replayed
/// insert cannot bring the row back), and for every key the table's floor in <c>&lt;schema&gt;._sluice_mirror_positions</c>:
/// the position of its last truncate (for a table an earlier version mirrored, the applied position it left), below
/// which every change is older than the truncate. A truncate removes the tombstones below it; so does the source's
/// low-water mark (<see cref="Core.Pipeline.RecordBatch.SettledBelow"/>): a tombstone below it refuses nothing that can still come.
/// A late truncate (after newer changes of other keys) removes only the rows older than itself. The row removed by a batch's
/// last change, when that is a delete, is kept (as JSON) in <c>&lt;schema&gt;._sluice_mirror_gone</c> until a later
/// batch's last delete replaces it: it may be the old key of a key change whose insert, with a TOASTed value it did
/// not carry, comes first in the next batch.
/// </summary>
internal sealed class PostgresMirror(PostgresSink sink, NpgsqlConnection connection, string schema, string name)
{
    public const string PositionsTable = "_sluice_mirror_positions";

    public const string GoneTable = "_sluice_mirror_gone";

    public const string DeletedTable = "_sluice_mirror_deleted";

    /// <summary>The floor of a table never truncated: every change is above it.</summary>
    public static readonly ChangePosition NoFloor = new(long.MinValue, long.MinValue);

    private readonly string _target = $"{Quote(schema)}.{Quote(name)}";
    private readonly string _positions = $"{Quote(schema)}.{Quote(PositionsTable)}";
    private readonly string _gone = $"{Quote(schema)}.{Quote(GoneTable)}";
    private readonly string _deleted = $"{Quote(schema)}.{Quote(DeletedTable)}";

    /// <summary>
    /// Applies the table's changes inside the caller's transaction: creates what is missing, reads (and locks) the
    /// table's floor, then runs the statements; returns the table's floor once this commits.
    /// </summary>
    public async Task<ChangePosition> ApplyAsync(ColumnBatch changes, long? settled, List<string> created, CancellationToken ct)
    {
        var key = Check(changes);
        var state = MirrorChanges.StateSchema(changes.Schema);
        await sink.EnsureTableAsync(connection, _target, state, key, created, ct).ConfigureAwait(false);
        await EnsurePositionsAsync(created, ct).ConfigureAwait(false);
        var floor = await FloorAsync(ct).ConfigureAwait(false);
        var statements = new List<NpgsqlBatchCommand>();
        var after = Statements(changes, key, floor, settled, statements);
        // Every statement of the table's changes in one round trip, run in order.
        await ExecAsync(connection, statements, ct).ConfigureAwait(false);
        return after;
    }

    /// <summary>
    /// The table's statements for a write in one round trip without a transaction of its own (the statements of one
    /// <see cref="NpgsqlBatch"/> run as one implicit transaction), or false when the table is not known to exist yet or
    /// its floor is not known from this sink's own last commit. The first statement locks the table's position row
    /// (which serialises the table's writers, as the long way's read does) and fails (<see cref="IsStale"/>) unless it
    /// still holds <paramref name="floor"/>, so a floor moved by anyone else meanwhile (a truncate) is never planned
    /// against: the caller then writes the batch the long way.
    /// </summary>
    public bool TryStatements(ColumnBatch changes, ChangePosition floor, long? settled, List<NpgsqlBatchCommand> statements, out ChangePosition after)
    {
        after = floor;
        var key = Check(changes);
        if (!sink.IsReady(_positions) || !sink.IsReady(Signature(_target, MirrorChanges.StateSchema(changes.Schema)))) { return false; }
        statements.Add(new NpgsqlBatchCommand(
            $"SELECT CASE WHEN count(*) = 1 THEN 0 ELSE ('{StaleGuard}' || count(*))::int END " +
            $"FROM (SELECT FROM {_positions} WHERE table_name = {Literal(name)} AND lsn = {floor.Lsn} AND seq = {floor.Seq} FOR UPDATE) AS held"));
        after = Statements(changes, key, floor, settled, statements);
        return true;
    }

    /// <summary>
    /// The text the guard of <see cref="TryStatements"/> fails to read as a number when the position row no longer holds
    /// what this sink last wrote: its error is told from any other by this text, which only the guard puts there.
    /// </summary>
    private const string StaleGuard = "sluice: mirror position moved, rows held ";

    /// <summary>True when <paramref name="e"/> is the guard of <see cref="TryStatements"/> finding the table's position moved.</summary>
    public static bool IsStale(PostgresException e) =>
        e is { SqlState: PostgresErrorCodes.InvalidTextRepresentation } && e.MessageText.Contains(StaleGuard, StringComparison.Ordinal);

    private IReadOnlyList<string> Check(ColumnBatch changes)
    {
        var key = changes.Schema.Key;
        if (!MirrorChanges.IsChangeTable(changes.Schema) || key.Count == 0)
        {
            throw new SluiceException(
                $"postgres sink {sink.Name} (mode: mirror): table '{changes.Schema.Table}' " +
                (key.Count == 0 && MirrorChanges.IsChangeTable(changes.Schema)
                    ? "has no primary key (nor a replica identity index) in the source, so its rows cannot be told apart; give the source table a primary key, or use mode: changes."
                    : "is not a change stream (no _op, _lsn, _seq columns); mode: mirror needs the rows of a postgres_cdc source."));
        }

        return key;
    }

    /// <summary>
    /// Adds the statements that apply <paramref name="changes"/> above <paramref name="floor"/>, and the prune of the
    /// tombstones below <paramref name="settled"/> when one is due (<see cref="PostgresSink.PruneDue"/>); returns the table's
    /// floor after them.
    /// </summary>
    private ChangePosition Statements(ColumnBatch changes, IReadOnlyList<string> key, ChangePosition floor, long? settled, List<NpgsqlBatchCommand> statements)
    {
        if (settled is { } mark && sink.PruneDue(_deleted + "/" + name, mark))
        {
            // Every change still to come has _lsn >= mark, above every tombstone removed here: none would have refused it.
            // Where it stands among the statements does not matter: this batch's changes are all at or above the mark too.
            statements.Add(new NpgsqlBatchCommand($"DELETE FROM {_deleted} WHERE table_name = {Literal(name)} AND lsn < {mark}"));
        }

        var segments = MirrorChanges.Plan(changes, key, floor);
        var last = MirrorChanges.Last(changes);
        var after = floor;
        foreach (var segment in segments)
        {
            if (segment.Upserts.Count > 0) { statements.Add(Upsert(segment, key)); }
            var final = ReferenceEquals(segment, segments[^1]) && segment.TruncateAt is null && segment.Deletes.Count > 0;
            if (segment.Deletes.Count > 0) { statements.Add(Delete(segment.Deletes, key, final ? last : null)); }
            if (segment.TruncateAt is { } at)
            {
                statements.AddRange(Truncate(at));
                if (at > after) { after = at; }
            }
        }

        return after;
    }

    /// <summary>
    /// A key's values as one <c>jsonb</c> array, the tombstones' key: the same for the same key whoever builds it, a
    /// timestamp read in UTC (its text would otherwise follow the session's time zone).
    /// </summary>
    private static string KeyJson(IReadOnlyList<string> key, TableSchema schema, Func<string, string> read) =>
        "jsonb_build_array(" + string.Join(", ", key.Select(k => schema.Fields[schema.IndexOf(k)].Type == FieldType.Timestamp ? $"({read(k)} AT TIME ZONE 'UTC')" : read(k))) + ")";

    private NpgsqlBatchCommand Upsert(MirrorSegment segment, IReadOnlyList<string> key)
    {
        var staged = MirrorChanges.Staged(segment);
        var command = new NpgsqlBatchCommand();
        var (from, read) = PgUnnest.Rows(command, staged, "s");
        var fields = segment.Upserts.Schema.Fields;
        var kept = segment.KeptColumns;
        var found = $"o.{Quote(key[0])} IS NOT NULL";
        var values = fields.Select((f, c) => kept.Contains(c)
            ? $"CASE WHEN s.{Quote(MirrorSegment.KeepPrefix + f.Name)} THEN (CASE WHEN m.{Quote(key[0])} IS NOT NULL THEN m.{Quote(f.Name)} WHEN {found} THEN o.{Quote(f.Name)} ELSE (jsonb_populate_record(NULL::{_target}, g.row)).{Quote(f.Name)} END) ELSE {read[c]} END"
            : read[c]);
        // The stored row a kept value comes from: the row's own, or the old key's for a key change (read before this
        // segment's deletes remove it; one statement reads the table as it was before the statement). When the table
        // lacks it, the row a batch's last delete removed, if that delete is the change that names it (a key
        // change replayed) or the one just before (a key change whose delete ended that batch). But first the row's
        // own key as stored when it holds the change that names the source or a later one (m): that change was applied
        // already (a copy redelivered before newer changes of the key), so the stored row is the version before this
        // upsert, and the old key may be gone or hold another row since.
        var fromAt = (string column) => read[staged.Schema.IndexOf(MirrorSegment.FromPrefix + column)];
        var own = (string column) => read[staged.Schema.IndexOf(column)];
        var (lsn, seq) = (Quote(ChangeEnvelope.Lsn), Quote(ChangeEnvelope.Seq));
        var join = kept.Count == 0 ? "" :
            $" LEFT JOIN {_target} m ON " + string.Join(" AND ", key.Select(k => $"m.{Quote(k)} = {own(k)}")) +
            $" AND (m.{lsn}, m.{seq}) >= ({fromAt(ChangeEnvelope.Lsn)}, {fromAt(ChangeEnvelope.Seq)})" +
            $" LEFT JOIN {_target} o ON " + string.Join(" AND ", key.Select(k => $"o.{Quote(k)} = {fromAt(k)}")) +
            $" LEFT JOIN {_gone} g ON g.table_name = {Literal(name)} AND NOT ({found}) AND g.lsn = {fromAt(ChangeEnvelope.Lsn)} AND g.seq IN ({fromAt(ChangeEnvelope.Seq)}, {fromAt(ChangeEnvelope.Seq)} - 1)";
        // A key deleted at or after this change (its tombstone) keeps it out: the change is a copy, or older than the delete.
        var alive = $" WHERE NOT EXISTS (SELECT FROM {_deleted} x WHERE x.table_name = {Literal(name)} AND x.key = {KeyJson(key, staged.Schema, own)}" +
                    $" AND (x.lsn, x.seq) >= ({own(ChangeEnvelope.Lsn)}, {own(ChangeEnvelope.Seq)}))";
        var columns = string.Join(", ", fields.Select(f => Quote(f.Name)));
        var set = string.Join(", ", fields.Where(f => !key.Contains(f.Name)).Select(f => $"{Quote(f.Name)} = EXCLUDED.{Quote(f.Name)}"));
        command.CommandText =
            $"INSERT INTO {_target} AS t ({columns}) SELECT {string.Join(", ", values)} FROM {from}{join}{alive} " +
            $"ON CONFLICT ({string.Join(", ", key.Select(Quote))}) DO UPDATE SET {set} " +
            $"WHERE (t.{lsn}, t.{seq}) < (EXCLUDED.{lsn}, EXCLUDED.{seq})";
        return command;
    }

    /// <summary>
    /// The deletes, each leaving its key's tombstone at its position (raised, never lowered); with <paramref name="keep"/>
    /// (the batch's last change is one of them), the row that delete removes is kept in the gone table. A delete that
    /// removes nothing (a replay) leaves the gone row as it was: the batch after the one it ended may still need it.
    /// </summary>
    private NpgsqlBatchCommand Delete(ColumnBatch deletes, IReadOnlyList<string> key, ChangePosition? keep)
    {
        var command = new NpgsqlBatchCommand();
        var (from, read) = PgUnnest.Rows(command, deletes, "d");
        var at = (string column) => read[deletes.Schema.IndexOf(column)];
        var (lsn, seq) = (at(ChangeEnvelope.Lsn), at(ChangeEnvelope.Seq));
        var delete =
            $"DELETE FROM {_target} t USING d WHERE " + string.Join(" AND ", key.Select(k => $"t.{Quote(k)} = {at(k)}")) +
            $" AND (t.{Quote(ChangeEnvelope.Lsn)}, t.{Quote(ChangeEnvelope.Seq)}) <= ({lsn}, {seq})";
        var gone = keep is not { } k ? "" :
            $", removed AS ({delete} RETURNING to_jsonb(t) AS row, {lsn} AS lsn, {seq} AS seq), " +
            $"gone AS (INSERT INTO {_gone} (table_name, lsn, seq, row) SELECT {Literal(name)}, lsn, seq, row FROM removed WHERE lsn = {k.Lsn} AND seq = {k.Seq} " +
            "ON CONFLICT (table_name) DO UPDATE SET lsn = EXCLUDED.lsn, seq = EXCLUDED.seq, row = EXCLUDED.row)";
        command.CommandText =
            $"WITH d AS (SELECT * FROM {from}){(gone.Length > 0 ? gone : $", removed AS ({delete})")} " +
            $"INSERT INTO {_deleted} AS x (table_name, key, lsn, seq) SELECT {Literal(name)}, {KeyJson(key, deletes.Schema, at)}, {lsn}, {seq} FROM d " +
            "ON CONFLICT (table_name, key) DO UPDATE SET lsn = EXCLUDED.lsn, seq = EXCLUDED.seq WHERE (x.lsn, x.seq) < (EXCLUDED.lsn, EXCLUDED.seq)";
        return command;
    }

    /// <summary>
    /// A truncate at <paramref name="at"/>: the rows older than it go (the whole table by <c>TRUNCATE</c> when none is
    /// newer, the usual case; a truncate stored after newer changes of other keys keeps those), the table's floor rises
    /// to it, and the tombstones below it go (the floor stands for them now).
    /// </summary>
    private IEnumerable<NpgsqlBatchCommand> Truncate(ChangePosition at)
    {
        var (lsn, seq) = (Quote(ChangeEnvelope.Lsn), Quote(ChangeEnvelope.Seq));
        var position = $"({at.Lsn}, {at.Seq})";
        yield return new NpgsqlBatchCommand(
            $"DO $sluice$ BEGIN IF EXISTS (SELECT FROM {_target} WHERE ({lsn}, {seq}) >= {position}) " +
            $"THEN DELETE FROM {_target} WHERE ({lsn}, {seq}) < {position}; ELSE TRUNCATE {_target}; END IF; END $sluice$");
        yield return new NpgsqlBatchCommand($"UPDATE {_positions} SET lsn = {at.Lsn}, seq = {at.Seq} WHERE table_name = {Literal(name)} AND (lsn, seq) < {position}");
        yield return new NpgsqlBatchCommand($"DELETE FROM {_deleted} WHERE table_name = {Literal(name)} AND (lsn, seq) < {position}");
    }

    private async Task EnsurePositionsAsync(List<string> created, CancellationToken ct)
    {
        if (sink.IsReady(_positions)) { return; }
        await ExecAsync(connection, $"SELECT pg_advisory_xact_lock(hashtext({Literal(_positions)}))", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {_positions} (table_name text PRIMARY KEY, lsn bigint NOT NULL, seq bigint NOT NULL)", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {_gone} (table_name text PRIMARY KEY, lsn bigint NOT NULL, seq bigint NOT NULL, row jsonb NOT NULL)", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {_deleted} (table_name text NOT NULL, key jsonb NOT NULL, lsn bigint NOT NULL, seq bigint NOT NULL, PRIMARY KEY (table_name, key))", ct).ConfigureAwait(false);
        // The prune below the low-water mark reads the oldest tombstones of a table, not all of them (tables of earlier versions get it here too).
        await ExecAsync(connection, $"CREATE INDEX IF NOT EXISTS {Quote(DeletedTable + "_lsn")} ON {_deleted} (table_name, lsn)", ct).ConfigureAwait(false);
        created.Add(_positions);
    }

    /// <summary>The table's floor (its row created at <see cref="NoFloor"/> when missing, and locked until the batch commits).</summary>
    private async Task<ChangePosition> FloorAsync(CancellationToken ct)
    {
        await ExecAsync(connection, $"INSERT INTO {_positions} (table_name, lsn, seq) VALUES ({Literal(name)}, {NoFloor.Lsn}, {NoFloor.Seq}) ON CONFLICT (table_name) DO NOTHING", ct).ConfigureAwait(false);
        var cmd = new NpgsqlCommand($"SELECT lsn, seq FROM {_positions} WHERE table_name = {Literal(name)} FOR UPDATE", connection);
        await using (cmd.ConfigureAwait(false))
        {
            var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(ct).ConfigureAwait(false) ? new ChangePosition(reader.GetInt64(0), reader.GetInt64(1)) : NoFloor;
            }
        }
    }
}
