using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Lookup;

/// <summary>A <c>lookup</c> dimension's Postgres table: its columns' types, its first rows at start, and the rows of keys the cache missed.</summary>
public sealed class LookupTable(LookupOptions options, PostgresConnectionOptions connection)
{
    private List<FieldType> _types = [];
    private string _keyType = "text";

    private string Table => $"{PgSlotAdmin.Quote(options.Schema)}.{PgSlotAdmin.Quote(options.Dimension)}";

    /// <summary>
    /// False while the table does not exist. Only with <c>on_miss: wait</c>, which says the dimension may lag behind the
    /// facts (another pipeline's mirror creates it at its first change): misses then wait for it as for a missing key,
    /// and are dead-lettered when it is still not there. Otherwise a missing table stops the pipeline.
    /// </summary>
    public bool Present { get; private set; }

    /// <summary>Reads the columns' types (declared types win) and the first <paramref name="limit"/> rows into <paramref name="cache"/>.</summary>
    public async Task LoadAsync(LookupCache cache, int limit, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cache);
        await using var db = await OpenAsync(ct).ConfigureAwait(false);
        if (await DescribeAsync(db, cache, ct).ConfigureAwait(false))
        {
            await ReadAsync(db, cache, $"LIMIT {limit}", null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Reads the rows of <paramref name="keys"/> into the cache (those with no row stay missing).</summary>
    public async Task FetchAsync(LookupCache cache, IReadOnlyCollection<string> keys, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0) { return; }
        await using var db = await OpenAsync(ct).ConfigureAwait(false);
        if (Present || await DescribeAsync(db, cache, ct).ConfigureAwait(false))
        {
            await ReadAsync(db, cache, $"WHERE {PgSlotAdmin.Quote(options.DimensionKey)} = ANY($1::text[]::{_keyType}[])", keys.ToArray(), ct).ConfigureAwait(false);
        }
    }

    /// <summary>The columns' and the key's types; false when the table does not exist (yet) and misses may wait for it.</summary>
    private async Task<bool> DescribeAsync(NpgsqlConnection db, LookupCache cache, CancellationToken ct)
    {
        var columns = await PgSnapshotReader.ColumnsAsync(db, null, options.Schema, options.Dimension, ct).ConfigureAwait(false);
        if (columns.Count == 0)
        {
            return options.OnMiss == LookupMiss.Wait
                ? false
                : throw new FatalException($"lookup: dimension table {options.Schema}.{options.Dimension} not found in database '{connection.Database}'.");
        }

        var types = new List<FieldType>();
        foreach (var field in options.Fields.Prepend(options.DimensionKey))
        {
            var found = columns.FindIndex(c => c.Name == field);
            if (found < 0)
            {
                throw new FatalException($"lookup: column '{field}' is not in {options.Schema}.{options.Dimension} (columns: {string.Join(", ", columns.Select(c => c.Name))}).");
            }

            types.Add(options.Types.TryGetValue(field, out var declared) ? declared : columns[found].Type);
        }

        await using (var type = new NpgsqlCommand("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2", db))
        {
            type.Parameters.AddWithValue(Table);
            type.Parameters.AddWithValue(options.DimensionKey);
            _keyType = (string?)await type.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? "text";
        }

        _types = types;
        cache.Types = types.Skip(1).ToList();
        Present = true;
        return true;
    }

    private async Task ReadAsync(NpgsqlConnection db, LookupCache cache, string where, string[]? keys, CancellationToken ct)
    {
        var names = options.Fields.Prepend(options.DimensionKey).ToList();
        var select = string.Join(", ", names.Select(f => PgSlotAdmin.Quote(f) + "::text"));
        await using var cmd = new NpgsqlCommand($"SELECT {select} FROM {Table} {where}", db);
        if (keys is not null) { cmd.Parameters.AddWithValue(keys); }
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var schema = new TableSchema(options.Dimension, names.Select((f, i) => new FieldSpec(f, _types[i], false)).ToList());
        var builder = new ColumnBatchBuilder(schema, 1024);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            for (var i = 0; i < names.Count; i++)
            {
                if (!reader.IsDBNull(i)) { PgTypes.Set(builder[i], _types[i], reader.GetString(i)); }
            }

            builder.CommitRow();
        }

        var rows = builder.Flush();
        for (var row = 0; row < rows.Count; row++)
        {
            if (LookupCache.KeyText(rows.Value(0, row)) is { } key)
            {
                cache.Put(key, Enumerable.Range(1, options.Fields.Count).Select(c => rows.Value(c, row)).ToArray());
            }
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        var db = new NpgsqlConnection(connection.ConnectionString("sluice-lookup"));
        await db.OpenAsync(ct).ConfigureAwait(false);
        return db;
    }
}
