using System.Text.Json;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>The rows of one incremental snapshot chunk: its rows, each kept row's key, how many were read, and the last key read (JSON).</summary>
internal sealed record SnapshotChunk(ColumnBatch Rows, string[] Keys, int Read, string? LastKey);

/// <summary>
/// The SELECT of an incremental snapshot's chunks: <c>SELECT every column::text FROM t WHERE (where) AND (key) &gt;
/// (last key) ORDER BY key LIMIT rows</c>. The last key travels as the key columns' text and is cast back to their
/// types, so the comparison is Postgres's own order (the index's), the same one <c>ORDER BY</c> used.
/// </summary>
internal sealed class PgChunkQuery
{
    private readonly string _select;
    private readonly string _order;
    private readonly string[] _keyTypes;
    private readonly string _keyList;

    private PgChunkQuery(CdcTable table, List<FieldSpec> columns, int[] key, string[] keyTypes, string? where, int rows)
    {
        Table = table;
        Columns = columns;
        Key = key;
        Rows = rows;
        _keyTypes = keyTypes;
        // Qualified: a bare name in ORDER BY would be the output column, the key's text, and sort 10 before 9.
        _keyList = PgSnapshotReader.KeyList(table);
        _order = _keyList;
        _select = $"SELECT {PgSnapshotReader.SelectList(columns)} FROM {table.Sql} AS {PgSnapshotReader.Alias} WHERE {(where is null ? "true" : $"({where})")}";
    }

    public CdcTable Table { get; }

    public List<FieldSpec> Columns { get; }

    /// <summary>Indexes of the key columns in <see cref="Columns"/>.</summary>
    public int[] Key { get; }

    public int Rows { get; }

    /// <summary>The table's columns and key types now; a table without a key cannot be read in chunks.</summary>
    public static async Task<PgChunkQuery> CreateAsync(NpgsqlConnection connection, CdcTable table, string? where, int rows, CancellationToken ct)
    {
        if (table.KeyColumns.Count == 0)
        {
            throw new SluiceException($"table {table.Display} has no primary key (nor a replica identity index): an incremental snapshot reads a table in chunks by its key. Add a primary key.");
        }

        var columns = await PgSnapshotReader.ColumnsAsync(connection, null, table.Schema, table.Name, ct).ConfigureAwait(false);
        var key = PgSnapshotReader.KeyIndexes(table, columns);
        await using var cmd = new NpgsqlCommand(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped", connection);
        cmd.Parameters.AddWithValue(table.Sql);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false)) { types[r.GetString(0)] = r.GetString(1); }
        }

        return new PgChunkQuery(table, columns, key, table.KeyColumns.Select(k => types[k]).ToArray(), where, rows);
    }

    public NpgsqlCommand Command(NpgsqlConnection connection, string? afterKey)
    {
        var sql = _select;
        var cmd = new NpgsqlCommand { Connection = connection };
        if (afterKey is not null)
        {
            var parts = JsonSerializer.Deserialize<string?[]>(afterKey) ?? [];
            if (parts.Length != _keyTypes.Length)
            {
                throw new SluiceException($"incremental snapshot of {Table.Display}: the recorded last key {afterKey} does not fit the key ({_keyList}); the key changed since. Ask for a new snapshot.");
            }

            sql += $" AND ({_keyList}) > ({string.Join(", ", _keyTypes.Select((t, i) => $"${i + 1}::text::{t}"))})";
            foreach (var part in parts) { cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)part ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text }); }
        }

        cmd.CommandText = $"{sql} ORDER BY {_order} LIMIT {Rows}";
        return cmd;
    }
}
