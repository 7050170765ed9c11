using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Schema;
using Sluice.Transforms.Lookup;

namespace Sluice.Recipes.Engagement;

/// <summary>
/// A dimension table held in memory by key: loaded once from Postgres, then changed by the dimension's rows in the
/// stream (snapshot reads, inserts, updates and deletes), so every later fact sees the change. Memory: one entry per
/// dimension row (the content catalogue, not the events).
/// </summary>
public sealed class DimensionCache(EngagementEnrichOptions options)
{
    private readonly Dictionary<long, object?[]> _rows = [];

    /// <summary>The copied fields' types, in <see cref="EngagementEnrichOptions.Fields"/> order (known after loading).</summary>
    public IReadOnlyList<FieldType> Types { get; private set; } = [];

    public int Count => _rows.Count;

    public bool Loaded { get; private set; }

    public async Task LoadAsync(CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-enrich"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        var columns = await PgSnapshotReader.ColumnsAsync(connection, null, options.Schema, options.Dimension, ct).ConfigureAwait(false);
        if (columns.Count == 0)
        {
            throw new SluiceException($"engagement_enrich: dimension table {options.Schema}.{options.Dimension} not found in database '{options.Connection.Database}'.");
        }

        var types = new List<FieldType>();
        foreach (var field in options.Fields.Prepend(options.Key))
        {
            var found = columns.FindIndex(c => c.Name == field);
            if (found < 0)
            {
                throw new SluiceException($"engagement_enrich: column '{field}' is not in {options.Schema}.{options.Dimension} (columns: {string.Join(", ", columns.Select(c => c.Name))}).");
            }

            types.Add(columns[found].Type);
        }

        if (types[0] != FieldType.Integer)
        {
            throw new SluiceException($"engagement_enrich: the key {options.Dimension}.{options.Key} must be an integer column.");
        }

        Prepare(types.Skip(1).ToList());
        var select = string.Join(", ", options.Fields.Prepend(options.Key).Select(f => PgSlotAdmin.Quote(f) + "::text"));
        await using var cmd = new NpgsqlCommand($"SELECT {select} FROM {PgSlotAdmin.Quote(options.Schema)}.{PgSlotAdmin.Quote(options.Dimension)}", connection);
        await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var schema = new TableSchema(options.Dimension, options.Fields.Prepend(options.Key).Select((f, i) => new FieldSpec(f, types[i], false)).ToList());
        var builder = new ColumnBatchBuilder(schema, 1024);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            for (var i = 0; i < schema.Fields.Count; i++)
            {
                if (!reader.IsDBNull(i)) { PgTypes.Set(builder[i], types[i], reader.GetString(i)); }
            }

            builder.CommitRow();
        }

        var batch = builder.Flush();
        for (var row = 0; row < batch.Count; row++)
        {
            if (batch.Value(0, row) is long key)
            {
                _rows[key] = Enumerable.Range(1, options.Fields.Count).Select(c => batch.Value(c, row)).ToArray();
            }
        }
    }

    /// <summary>Sets the copied fields' types and marks the cache usable (the load does this; unit tests fill it by <see cref="Apply"/>).</summary>
    internal void Prepare(IReadOnlyList<FieldType> types)
    {
        Types = types;
        Loaded = true;
    }

    /// <summary>
    /// Applies the dimension's changes from the stream (rows carry <c>_op</c>): a delete removes the key, a truncate
    /// empties the cache, and a column the row marks unchanged (<c>_unchanged</c>: a TOASTed value the update did not
    /// touch, not sent by the server) keeps the value the cache had.
    /// </summary>
    public void Apply(ColumnBatch changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var key = changes.Schema.IndexOf(options.Key);
        var op = changes.Schema.IndexOf(ChangeEnvelope.Op);
        var fields = options.Fields.Select(changes.Schema.IndexOf).ToArray();
        var unchanged = ChangeEnvelope.UnchangedByRow(changes);
        for (var row = 0; row < changes.Count; row++)
        {
            var what = op >= 0 ? changes.Strings(op)[row] : null;
            if (what == ChangeEnvelope.Truncate)
            {
                _rows.Clear();
                continue;
            }

            if (key < 0 || changes.Value(key, row) is not long id) { continue; }
            if (what == ChangeEnvelope.Delete)
            {
                _rows.Remove(id);
                continue;
            }

            var kept = unchanged?[row] is { } marked ? _rows.GetValueOrDefault(id) : null;
            _rows[id] = fields.Select((f, i) =>
                f < 0 ? null : kept is not null && unchanged![row]!.Contains(f) ? kept[i] : DimensionValues.Convert(changes.Value(f, row), Types[i])).ToArray();
        }
    }

    public object?[]? Find(long key) => _rows.GetValueOrDefault(key);

}
