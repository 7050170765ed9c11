using System.Data;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Npgsql;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Reads the tables as of the snapshot a new slot exported, so the snapshot and the stream that follows meet exactly at
/// the slot's consistent point: nothing missed, nothing twice. Batch k of N gets position <c>consistentPoint - N + k</c>
/// (the last one is the consistent point itself), which lies above anything committed before: the slot is created
/// after <see cref="PgSlotAdmin.SnapshotGap"/> bytes of WAL, and N is kept below that.
/// </summary>
internal sealed class PgSnapshotReader(PostgresCdcOptions options, IReadOnlyList<CdcTable> tables, ILogger log)
{
    public async IAsyncEnumerable<RecordBatch> ReadAsync(string snapshotName, long consistentPoint, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-snapshot"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var tx = await BeginAsync(connection, snapshotName, ct).ConfigureAwait(false);
        var counts = await CountAsync(connection, tx, ct).ConfigureAwait(false);

        var maxBatches = PgSlotAdmin.SnapshotGap - 1;
        var perBatch = Math.Max(options.BatchRows, (int)Math.Min(int.MaxValue, (counts.Sum() + maxBatches - 1) / maxBatches));
        var total = counts.Sum(c => (c + perBatch - 1) / perBatch);
        if (total == 0)
        {
            yield return new RecordBatch([], consistentPoint);
            yield break;
        }

        long k = 0;
        for (var t = 0; t < tables.Count; t++)
        {
            var table = tables[t];
            var columns = await ColumnsAsync(connection, tx, table.Schema, table.Name, ct).ConfigureAwait(false);
            var shape = new PgTableShape(table, columns, Math.Min(perBatch, 65_536));
            var select = string.Join(", ", columns.Select(c => PgSlotAdmin.Quote(c.Name) + "::text"));
            await using var cmd = new NpgsqlCommand($"SELECT {select} FROM {table.Sql}", connection, tx);
            await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
            var position = consistentPoint - total + k + 1;
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    if (!await reader.IsDBNullAsync(i, ct).ConfigureAwait(false))
                    {
                        shape.Set(i, reader.GetString(i));
                    }
                }

                shape.Commit("r", position);
                if (shape.Builder.Count == perBatch)
                {
                    yield return new RecordBatch([shape.Builder.Flush()], position);
                    k++;
                    position = consistentPoint - total + k + 1;
                }
            }

            if (shape.Builder.Count > 0)
            {
                yield return new RecordBatch([shape.Builder.Flush()], position);
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
            var select = string.Join(", ", columns.Select(c => PgSlotAdmin.Quote(c.Name) + "::text"));
            await using var cmd = new NpgsqlCommand($"SELECT {select} FROM {table.Sql}", connection, tx);
            await using var reader = await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    if (!await reader.IsDBNullAsync(i, ct).ConfigureAwait(false)) { shape.Set(i, reader.GetString(i)); }
                }

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

    public static async Task<List<(string Name, FieldType Type)>> ColumnsAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string schema, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT a.attname, a.atttypid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace " +
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", connection, tx);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        var columns = new List<(string, FieldType)>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            columns.Add((r.GetString(0), PgTypes.FieldTypeOf(r.GetFieldValue<uint>(1))));
        }

        return columns;
    }
}
