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
    private readonly string _where;

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
        _where = where is null ? "true" : $"({where})";
        _select = $"SELECT {PgSnapshotReader.SelectList(columns)} FROM {table.Sql} AS {PgSnapshotReader.Alias} WHERE {_where}";
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

    /// <summary>
    /// The greatest key the snapshot will read: taken when it starts (or resumes), as Debezium's incremental snapshot
    /// does. A row inserted later has its insert in the stream anyway; without this bound a snapshot of a table that
    /// keeps growing at its end chases the new rows and never finishes. Null when no row matches.
    /// </summary>
    public async Task<string?> LastKeyAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var keys = string.Join(", ", Key.Select(i => PgSlotAdmin.Quote(Columns[i].Name) + "::text"));
        var descending = string.Join(", ", Table.KeyColumns.Select(k => $"{PgSnapshotReader.Alias}.{PgSlotAdmin.Quote(k)} DESC"));
        await using var cmd = new NpgsqlCommand($"SELECT {keys} FROM {Table.Sql} AS {PgSnapshotReader.Alias} WHERE {_where} ORDER BY {descending} LIMIT 1", connection);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false)) { return null; }
        var parts = new string?[Key.Length];
        for (var i = 0; i < parts.Length; i++) { parts[i] = reader.IsDBNull(i) ? null : reader.GetString(i); }
        return JsonSerializer.Serialize(parts);
    }

    /// <summary>The chunk after <paramref name="afterKey"/> (from the start when null), up to <paramref name="untilKey"/> inclusive.</summary>
    public NpgsqlCommand Command(NpgsqlConnection connection, string? afterKey, string? untilKey = null)
    {
        var sql = _select;
        var cmd = new NpgsqlCommand { Connection = connection };
        if (afterKey is not null) { sql += Bound(cmd, afterKey, ">"); }
        if (untilKey is not null) { sql += Bound(cmd, untilKey, "<="); }
        cmd.CommandText = $"{sql} ORDER BY {_order} LIMIT {Rows}";
        return cmd;
    }

    private string Bound(NpgsqlCommand cmd, string key, string comparison)
    {
        var parts = JsonSerializer.Deserialize<string?[]>(key) ?? [];
        if (parts.Length != _keyTypes.Length)
        {
            throw new SluiceException($"incremental snapshot of {Table.Display}: the recorded key {key} does not fit the key ({_keyList}); the key changed since. Ask for a new snapshot.");
        }

        var first = cmd.Parameters.Count;
        foreach (var part in parts) { cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)part ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text }); }
        return $" AND ({_keyList}) {comparison} ({string.Join(", ", _keyTypes.Select((t, i) => $"${first + i + 1}::text::{t}"))})";
    }
}
