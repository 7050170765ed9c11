using System.Data;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Reads the tables as of the snapshot a new slot exported, so the snapshot and the stream that follows meet exactly at
/// the slot's consistent point: nothing missed, nothing twice. Batch k of N gets position <c>consistentPoint - N + k</c>
/// (the last one is the consistent point itself), which lies above anything committed before: the slot is created
/// after <see cref="PgSlotAdmin.SnapshotGap"/> bytes of WAL, and N is kept below that. A snapshot taken again (the
/// earlier slot's stream may have reached some sinks, and the changes made since it was given up never will) starts
/// with a truncate of every table at <c>consistentPoint - N - 1</c>, still above the gap: every sink then holds exactly
/// the snapshot, not the snapshot over rows the source has since deleted.
/// </summary>
internal sealed class PgSnapshotReader(PostgresCdcOptions options, IReadOnlyList<CdcTable> tables, ILogger log, string deadLetterSource, DeadLetterStore deadLetters)
{
    /// <summary>
    /// The tables in key order (when they have a key), so that what every sink committed can be told by a table and a
    /// key: <paramref name="onBatch"/> hears, before each batch goes, its position, table index, last key (JSON, null
    /// for a table without key) and whether it ends its table. With <paramref name="again"/> (this data folder read the
    /// slot before) a batch of one truncate row per table goes first.
    /// </summary>
    public async IAsyncEnumerable<RecordBatch> ReadAsync(string snapshotName, long consistentPoint, bool again, Action<long, int, string?, bool>? onBatch, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-snapshot"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var tx = await BeginAsync(connection, snapshotName, ct).ConfigureAwait(false);
        var counts = await CountAsync(connection, tx, ct).ConfigureAwait(false);

        // One position below the batches is left for the truncates of a snapshot taken again.
        var maxBatches = PgSlotAdmin.SnapshotGap - 2;
        var perBatch = Math.Max(options.BatchRows, (int)Math.Min(int.MaxValue, (counts.Sum() + maxBatches - 1) / maxBatches));
        var total = counts.Sum(c => (c + perBatch - 1) / perBatch);
        if (again)
        {
            yield return await TruncatesAsync(connection, tx, consistentPoint - total - 1, ct).ConfigureAwait(false);
        }

        if (total == 0)
        {
            yield return new RecordBatch([], consistentPoint);
            yield break;
        }

        long k = 0;
        var snapshot = PgSnapshotNames.Initial(consistentPoint);
        for (var t = 0; t < tables.Count; t++)
        {
            var table = tables[t];
            var columns = await ColumnsAsync(connection, tx, table.Schema, table.Name, ct).ConfigureAwait(false);
            var shape = new PgTableShape(table, columns, Math.Min(perBatch, 65_536));
            var key = KeyIndexes(table, columns);
            var order = key.Length == 0 ? "" : " ORDER BY " + KeyList(table);
            await using var cmd = new NpgsqlCommand($"SELECT {SelectList(columns)} FROM {table.Sql} AS {Alias}{order}", connection, tx);
            await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
            var position = consistentPoint - total + k + 1;
            var texts = new string?[columns.Count];
            var letters = new LetterPlace($"slot consistent point {PgCdcState.Lsn(consistentPoint)}", $"snapshot:{consistentPoint}");
            long read = 0;
            string? lastKey = null;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var good = await SetRowAsync(reader, shape, columns, texts, ++read, letters, ct).ConfigureAwait(false);
                if (key.Length > 0 && onBatch is not null) { lastKey = KeyJson(texts, key); }
                if (!good) { continue; }
                shape.Commit("r", position);
                if (shape.Builder.Count == perBatch)
                {
                    onBatch?.Invoke(position, t, lastKey, false);
                    yield return Rows(shape.Builder.Flush(), position, snapshot);
                    k++;
                    position = consistentPoint - total + k + 1;
                }
            }

            if (shape.Builder.Count > 0)
            {
                onBatch?.Invoke(position, t, lastKey, true);
                yield return Rows(shape.Builder.Flush(), position, snapshot);
                k++;
            }

            PostgresLog.SnapshotRead(log, table.Display, counts[t]);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (k < total)
        {
            // Rows deleted between the count and the read cannot happen in one snapshot; this only keeps positions honest.
            yield return new RecordBatch([], consistentPoint);
        }
    }

    /// <summary>A batch of the initial snapshot: one table's rows at <paramref name="position"/>, named as the snapshot's.</summary>
    private static RecordBatch Rows(ColumnBatch rows, long position, string snapshot) =>
        new([rows], position) { Snapshots = [new SnapshotRows(rows.Schema.Table, position, snapshot)] };

    /// <summary>
    /// A truncate row of every table at <paramref name="position"/>: what a sink holds from an earlier slot's stream is
    /// gone before the snapshot's rows arrive (a mirror empties the table, a change log records the truncate).
    /// </summary>
    private async Task<RecordBatch> TruncatesAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long position, CancellationToken ct)
    {
        var truncates = new List<ColumnBatch>(tables.Count);
        foreach (var table in tables)
        {
            var shape = new PgTableShape(table, await ColumnsAsync(connection, tx, table.Schema, table.Name, ct).ConfigureAwait(false), 1);
            shape.Commit(ChangeEnvelope.Truncate, position);
            truncates.Add(shape.Builder.Flush());
        }

        PostgresLog.SnapshotTruncates(log, tables.Count, PgCdcState.Lsn(position));
        return new RecordBatch(truncates, position);
    }

    /// <summary>
    /// The rows of tables added to the recipe after the first start, as of the snapshot a temporary slot exported, in
    /// batches of <see cref="PostgresCdcOptions.BatchRows"/> rows whose <c>_lsn</c> is just below that slot's consistent
    /// point (above every change the rows include, below every change they do not). All of them are held until the
    /// reader places them in the stream: the added tables' size is this buffer's bound.
    /// </summary>
    public async Task<(List<ColumnBatch> Batches, int Rows)> ReadAddedAsync(string snapshotName, long consistentPoint, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-snapshot"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var tx = await BeginAsync(connection, snapshotName, ct).ConfigureAwait(false);
        var counts = await CountAsync(connection, tx, ct).ConfigureAwait(false);
        var batches = new List<ColumnBatch>();
        var rows = 0;
        for (var t = 0; t < tables.Count; t++)
        {
            var table = tables[t];
            var columns = await ColumnsAsync(connection, tx, table.Schema, table.Name, ct).ConfigureAwait(false);
            var shape = new PgTableShape(table, columns, (int)Math.Min(options.BatchRows, Math.Max(1, counts[t])));
            await using var cmd = new NpgsqlCommand($"SELECT {SelectList(columns)} FROM {table.Sql}", connection, tx);
            await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
            var texts = new string?[columns.Count];
            var letters = new LetterPlace($"slot consistent point {PgCdcState.Lsn(consistentPoint)}", $"snapshot:{consistentPoint}");
            long read = 0;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                if (!await SetRowAsync(reader, shape, columns, texts, ++read, letters, ct).ConfigureAwait(false)) { continue; }
                shape.Commit(ChangeEnvelope.Read, consistentPoint - 1);
                rows++;
                if (shape.Builder.Count == options.BatchRows) { batches.Add(shape.Builder.Flush()); }
            }

            if (shape.Builder.Count > 0) { batches.Add(shape.Builder.Flush()); }
            PostgresLog.SnapshotRead(log, table.Display, counts[t]);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return (batches, rows);
    }

    /// <summary>
    /// Sets one row's columns from the reader; false when a value is not one Sluice can read: then the row goes to the
    /// dead-letter store whole, with the column and why, never a NULL in its place.
    /// </summary>
    private async Task<bool> SetRowAsync(NpgsqlDataReader reader, PgTableShape shape, List<FieldSpec> columns, string?[] texts, long read, LetterPlace place, CancellationToken ct)
    {
        var bad = -1;
        for (var i = 0; i < columns.Count; i++)
        {
            // Async: in sequential access a value may still be on the socket, and a synchronous read there blocks the thread
            // (with inline socket completions, the socket thread itself, which would then never see the data arrive).
            texts[i] = await reader.IsDBNullAsync(i, ct).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<string>(i, ct).ConfigureAwait(false);
            if (texts[i] is { } text && bad < 0 && !shape.Set(i, text)) { bad = i; }
        }

        if (bad < 0) { return true; }
        var table = shape.Table;
        shape.Builder.AbortRow();
        PostgresLog.BadValue(log, table.Display, place.Where, columns[bad].Name, columns[bad].Type.Name());
        var row = columns.Select((c, i) => (c.Name, texts[i])).ToDictionary(p => p.Name, p => p.Item2, StringComparer.Ordinal);
        deadLetters.Add(deadLetterSource, $"{table.Display} snapshot row {read} ({place.Where})",
            $"snapshot of {table.BatchName}: column {columns[bad].Name}: '{texts[bad]}' is not a {columns[bad].Type.Name()} value as Sluice reads Postgres's text (not applied downstream)",
            JsonSerializer.Serialize(row), $"{deadLetterSource}:{place.Id}:{table.Display}:{read}");
        return false;
    }

    /// <summary>
    /// One chunk of an incremental snapshot (<see cref="PgIncrementalSnapshot"/>): up to <see cref="PgChunkQuery.Rows"/>
    /// rows after <paramref name="afterKey"/> in key order, as <c>_op = r</c> rows (their <c>_lsn</c> is set where they
    /// enter the stream), each row's key, and the last key read (a row dead-lettered for a value still counts as read).
    /// </summary>
    public async Task<SnapshotChunk> ReadChunkAsync(NpgsqlConnection connection, PgChunkQuery query, string? afterKey, string? untilKey, string where, CancellationToken ct)
    {
        await using var cmd = query.Command(connection, afterKey, untilKey);
        await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
        var shape = new PgTableShape(query.Table, query.Columns, query.Rows);
        var texts = new string?[query.Columns.Count];
        var keys = new List<string>(query.Rows);
        var letters = new LetterPlace(where, $"chunk:{where}");
        var read = 0;
        string? lastKey = null;
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var good = await SetRowAsync(reader, shape, query.Columns, texts, ++read, letters, ct).ConfigureAwait(false);
            lastKey = KeyJson(texts, query.Key);
            if (!good) { continue; }
            keys.Add(PgChunkWindow.KeyText(query.Key.Select(i => texts[i])));
            shape.Commit(ChangeEnvelope.Read, 0);
        }

        return new SnapshotChunk(shape.Builder.Flush(), [.. keys], read, lastKey);
    }

    /// <summary>The alias of the table in snapshot SELECTs, so key columns can be named as the table's, not the output's.</summary>
    public const string Alias = "sluice_src";

    /// <summary>The key columns qualified by <see cref="Alias"/>: in ORDER BY a bare name is the output column (the key's text, in text order).</summary>
    public static string KeyList(CdcTable table) => string.Join(", ", table.KeyColumns.Select(k => $"{Alias}.{PgSlotAdmin.Quote(k)}"));

    public static string SelectList(IEnumerable<FieldSpec> columns) => string.Join(", ", columns.Select(c => PgSlotAdmin.Quote(c.Name) + "::text"));

    public static int[] KeyIndexes(CdcTable table, List<FieldSpec> columns) =>
        table.KeyColumns.Select(k => columns.FindIndex(c => c.Name == k)).Where(i => i >= 0).ToArray();

    private static string KeyJson(string?[] texts, int[] key) => JsonSerializer.Serialize(key.Select(i => texts[i]).ToArray());

    /// <summary>Where a dead-lettered snapshot row was read, for its letter's position text and id.</summary>
    private sealed record LetterPlace(string Where, string Id);

    private static async Task<NpgsqlTransaction> BeginAsync(NpgsqlConnection connection, string snapshotName, CancellationToken ct)
    {
        var tx = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
        await using var set = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshotName.Replace("'", "''", StringComparison.Ordinal)}'", connection, tx);
        await set.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return tx;
    }

    private async Task<List<long>> CountAsync(NpgsqlConnection connection, NpgsqlTransaction tx, CancellationToken ct)
    {
        var counts = new List<long>();
        foreach (var table in tables)
        {
            await using var count = new NpgsqlCommand($"SELECT count(*) FROM {table.Sql}", connection, tx);
            counts.Add((long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!);
        }

        return counts;
    }

    /// <summary>
    /// The table's columns as fields. A domain is typed as its base type, through domains over domains (a domain's
    /// own type modifier applies when the column has none: a domain over <c>numeric(12,2)</c> keeps 12 and 2).
    /// </summary>
    public static async Task<List<FieldSpec>> ColumnsAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string schema, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "WITH RECURSIVE col AS (" +
            " SELECT a.attnum, a.attname, a.atttypid AS typid, a.atttypmod AS typmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid" +
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped" +
            " UNION ALL SELECT col.attnum, col.attname, t.typbasetype, CASE WHEN col.typmod = -1 THEN t.typtypmod ELSE col.typmod END" +
            " FROM col JOIN pg_type t ON t.oid = col.typid WHERE t.typtype = 'd')" +
            " SELECT col.attname, col.typid, col.typmod FROM col JOIN pg_type t ON t.oid = col.typid WHERE t.typtype <> 'd' ORDER BY col.attnum", connection, tx);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        var columns = new List<FieldSpec>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            columns.Add(PgTypes.FieldOf(r.GetString(0), r.GetFieldValue<uint>(1), r.GetInt32(2)));
        }

        return columns;
    }
}
