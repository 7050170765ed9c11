using Npgsql;
using Sluice.Core;
using Sluice.Core.Schema;
using static Sluice.Connectors.Postgres.PostgresSink;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Applies one table's changes to its mirror (<c>mode: mirror</c>, docs/CDC.md "Mirrors") inside the batch's
/// transaction: per segment (<see cref="MirrorChanges"/>), upserts as <c>INSERT ... ON CONFLICT DO UPDATE</c> that only
/// replaces a row holding an earlier change (a row at the same position is this change, applied already: its kept
/// values may be gone from where they came from, a key change's old row), columns the change did not carry taken from the stored row, deletes of rows
/// not newer than the delete, then the truncate. The table's applied position is kept in
/// <c>&lt;schema&gt;._sluice_mirror_positions</c> in the same transaction: a replayed change before it is skipped, so a
/// replay can neither bring back a deleted row nor empty a table again. The row removed by a batch's last change, when
/// that is a delete, is kept (as JSON) in <c>&lt;schema&gt;._sluice_mirror_gone</c> until the table's next batch: it may
/// be the old key of a key change whose insert, with a TOASTed value it did not carry, comes first in that batch.
/// </summary>
internal sealed class PostgresMirror(PostgresSink sink, NpgsqlConnection connection, string schema, string name)
{
    public const string PositionsTable = "_sluice_mirror_positions";

    public const string GoneTable = "_sluice_mirror_gone";

    private readonly string _target = $"{Quote(schema)}.{Quote(name)}";
    private readonly string _positions = $"{Quote(schema)}.{Quote(PositionsTable)}";
    private readonly string _gone = $"{Quote(schema)}.{Quote(GoneTable)}";

    /// <summary>
    /// Applies the table's changes inside the caller's transaction: creates what is missing, reads (and locks) the
    /// table's applied position, then runs the statements; returns the table's position once this commits.
    /// </summary>
    public async Task<ChangePosition?> ApplyAsync(ColumnBatch changes, List<string> created, CancellationToken ct)
    {
        var key = Check(changes);
        var state = MirrorChanges.StateSchema(changes.Schema);
        await sink.EnsureTableAsync(connection, _target, state, key, created, ct).ConfigureAwait(false);
        await EnsurePositionsAsync(created, ct).ConfigureAwait(false);
        var applied = await AppliedAsync(ct).ConfigureAwait(false);
        var statements = new List<NpgsqlBatchCommand>();
        var position = Statements(changes, key, applied, statements);
        // Every statement of the table's changes in one round trip, run in order.
        await ExecAsync(connection, statements, ct).ConfigureAwait(false);
        return position;
    }

    /// <summary>
    /// The table's statements for a write in one round trip without a transaction of its own (the statements of one
    /// <see cref="NpgsqlBatch"/> run as one implicit transaction), or false when the table is not known to exist yet or
    /// its applied position is not known from this sink's own last commit. The first statement locks the table's
    /// position row and fails (<see cref="IsStale"/>) unless it still holds <paramref name="applied"/>, so a position
    /// moved by anyone else meanwhile is never planned against: the caller then writes the batch the long way.
    /// </summary>
    public bool TryStatements(ColumnBatch changes, ChangePosition applied, List<NpgsqlBatchCommand> statements, out ChangePosition? position)
    {
        position = null;
        var key = Check(changes);
        if (!sink.IsReady(_positions) || !sink.IsReady(Signature(_target, MirrorChanges.StateSchema(changes.Schema)))) { return false; }
        statements.Add(new NpgsqlBatchCommand(
            $"SELECT CASE WHEN count(*) = 1 THEN 0 ELSE ('{StaleGuard}' || count(*))::int END " +
            $"FROM (SELECT FROM {_positions} WHERE table_name = {Literal(name)} AND lsn = {applied.Lsn} AND seq = {applied.Seq} FOR UPDATE) AS held"));
        position = Statements(changes, key, applied, statements);
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

    /// <summary>Adds the statements that apply <paramref name="changes"/> after <paramref name="applied"/>; returns the table's position after them.</summary>
    private ChangePosition? Statements(ColumnBatch changes, IReadOnlyList<string> key, ChangePosition? applied, List<NpgsqlBatchCommand> statements)
    {
        var added = statements.Count;
        var segments = MirrorChanges.Plan(changes, key, applied);
        var last = MirrorChanges.Last(changes);
        // Only a batch with news replaces the kept row (a replay of the last one must leave it for the batch after).
        var fresh = last is { } l && (applied is null || l > applied);
        var forget = new NpgsqlBatchCommand($"DELETE FROM {_gone} WHERE table_name = {Literal(name)}");
        foreach (var segment in segments)
        {
            if (segment.Upserts.Count > 0) { statements.Add(Upsert(segment, key)); }
            var final = fresh && ReferenceEquals(segment, segments[^1]) && segment.TruncateAt is null && segment.Deletes.Count > 0;
            if (final) { statements.Add(forget); }
            if (segment.Deletes.Count > 0) { statements.Add(Delete(segment.Deletes, key, final ? last : null)); }
            if (segment.TruncateAt is not null) { statements.Add(new NpgsqlBatchCommand($"TRUNCATE {_target}")); }
        }

        if (fresh && statements.IndexOf(forget, added) < 0) { statements.Add(forget); }
        if (!fresh) { return applied; }
        statements.Add(new NpgsqlBatchCommand(
            $"INSERT INTO {_positions} AS p (table_name, lsn, seq) VALUES ({Literal(name)}, {last!.Value.Lsn}, {last.Value.Seq}) " +
            "ON CONFLICT (table_name) DO UPDATE SET lsn = EXCLUDED.lsn, seq = EXCLUDED.seq"));
        return last;
    }

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
        // lacks it, the row the previous batch's last delete removed, if that delete is the change that names it (a key
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
        var columns = string.Join(", ", fields.Select(f => Quote(f.Name)));
        var set = string.Join(", ", fields.Where(f => !key.Contains(f.Name)).Select(f => $"{Quote(f.Name)} = EXCLUDED.{Quote(f.Name)}"));
        command.CommandText =
            $"INSERT INTO {_target} AS t ({columns}) SELECT {string.Join(", ", values)} FROM {from}{join} " +
            $"ON CONFLICT ({string.Join(", ", key.Select(Quote))}) DO UPDATE SET {set} " +
            $"WHERE (t.{Quote(ChangeEnvelope.Lsn)}, t.{Quote(ChangeEnvelope.Seq)}) < (EXCLUDED.{Quote(ChangeEnvelope.Lsn)}, EXCLUDED.{Quote(ChangeEnvelope.Seq)})";
        return command;
    }

    /// <summary>The deletes; with <paramref name="keep"/> (the batch's last change is one of them), the row that delete removes is kept in the gone table.</summary>
    private NpgsqlBatchCommand Delete(ColumnBatch deletes, IReadOnlyList<string> key, ChangePosition? keep)
    {
        var command = new NpgsqlBatchCommand();
        var (from, read) = PgUnnest.Rows(command, deletes, "d");
        var at = (string column) => read[deletes.Schema.IndexOf(column)];
        var delete =
            $"DELETE FROM {_target} t USING {from} WHERE " + string.Join(" AND ", key.Select(k => $"t.{Quote(k)} = {at(k)}")) +
            $" AND (t.{Quote(ChangeEnvelope.Lsn)}, t.{Quote(ChangeEnvelope.Seq)}) <= ({at(ChangeEnvelope.Lsn)}, {at(ChangeEnvelope.Seq)})";
        command.CommandText = keep is not { } k ? delete :
            $"WITH removed AS ({delete} RETURNING to_jsonb(t) AS row, {at(ChangeEnvelope.Lsn)} AS lsn, {at(ChangeEnvelope.Seq)} AS seq) " +
            $"INSERT INTO {_gone} (table_name, lsn, seq, row) SELECT {Literal(name)}, lsn, seq, row FROM removed WHERE lsn = {k.Lsn} AND seq = {k.Seq}";
        return command;
    }

    private async Task EnsurePositionsAsync(List<string> created, CancellationToken ct)
    {
        if (sink.IsReady(_positions)) { return; }
        await ExecAsync(connection, $"SELECT pg_advisory_xact_lock(hashtext({Literal(_positions)}))", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {_positions} (table_name text PRIMARY KEY, lsn bigint NOT NULL, seq bigint NOT NULL)", ct).ConfigureAwait(false);
        await ExecAsync(connection, $"CREATE TABLE IF NOT EXISTS {_gone} (table_name text PRIMARY KEY, lsn bigint NOT NULL, seq bigint NOT NULL, row jsonb NOT NULL)", ct).ConfigureAwait(false);
        created.Add(_positions);
    }

    /// <summary>The position of the last change applied to the table (locked until the batch commits), or null when none was.</summary>
    private async Task<ChangePosition?> AppliedAsync(CancellationToken ct)
    {
        var cmd = new NpgsqlCommand($"SELECT lsn, seq FROM {_positions} WHERE table_name = {Literal(name)} FOR UPDATE", connection);
        await using (cmd.ConfigureAwait(false))
        {
            var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(ct).ConfigureAwait(false) ? new ChangePosition(reader.GetInt64(0), reader.GetInt64(1)) : null;
            }
        }
    }
}
