using System.Globalization;
using Sluice.Core;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Connectors.Lake;

/// <summary>
/// Readies one write's changes for a lake mirror (docs/CDC.md, "Mirrors"). A change that did not carry a value (a
/// TOASTed value its UPDATE left alone, listed in <c>_unchanged</c>) gets it here, from the key's previous version: an
/// earlier change of the same write, else the mirror's current row. A key change's insert takes it from the old key
/// (the delete just before it in its transaction), in this write or, when the delete ended an earlier write, from the
/// old key's last change as stored. So every stored change is whole and a read needs no history. A change whose
/// previous version the mirror does not hold is refused (dead-lettered), never stored with NULL there.
/// One instance per write: what it remembers is this write's changes, the lake holds the rest.
/// </summary>
internal sealed class MirrorWrite(LakeStore lake, string sink, IReadOnlySet<string> marked)
{
    private const char Separator = '\u001f';
    private readonly Dictionary<string, TableState> _tables = new(StringComparer.Ordinal);

    /// <summary>The batch tables of a write that mark unchanged values somewhere: only those need their versions followed.</summary>
    public static HashSet<string> Marking(IEnumerable<ColumnBatch> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var table in tables)
        {
            var at = table.Schema.IndexOf(ChangeEnvelope.Unchanged);
            if (at >= 0 && table.Strings(at).Any(v => v is { Length: > 0 })) { names.Add(table.Schema.Table); }
        }

        return names;
    }

    /// <summary>
    /// The rows with their unchanged values filled in (and <c>_unchanged</c> cleared where filled), and which rows must
    /// be refused because the mirror holds no earlier version to fill them from (null: none).
    /// </summary>
    public (ColumnBatch Rows, bool[]? Refused) Prepare(ColumnBatch rows, IReadOnlyList<string> key, LakeTable? stored)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(key);
        if (!marked.Contains(rows.Schema.Table) || rows.Count == 0) { return (rows, null); }
        if (!_tables.TryGetValue(rows.Schema.Table, out var state)) { _tables[rows.Schema.Table] = state = new TableState(); }

        var schema = rows.Schema;
        var keyAt = key.Select(schema.IndexOf).ToArray();
        var ops = rows.Strings(schema.IndexOf(ChangeEnvelope.Op));
        var lsns = (long?[])rows.Columns[schema.IndexOf(ChangeEnvelope.Lsn)];
        var seqs = (long?[])rows.Columns[schema.IndexOf(ChangeEnvelope.Seq)];
        var unchangedAt = schema.IndexOf(ChangeEnvelope.Unchanged);
        var marks = ChangeEnvelope.UnchangedByRow(rows);
        var columns = rows.Columns.ToArray();
        foreach (var c in (marks ?? []).Where(m => m is not null).SelectMany(m => m!).Append(unchangedAt).Distinct())
        {
            columns[c] = (Array)columns[c].Clone();
        }

        var run = new Run(schema, columns, new bool[rows.Count]);
        var sources = new Source?[rows.Count];
        var lookups = new HashSet<string>(StringComparer.Ordinal);
        (int Row, Version? Before, bool Known)? deleted = null;
        for (var row = 0; row < rows.Count; row++)
        {
            switch (ops[row])
            {
                case ChangeEnvelope.Truncate:
                    state.Latest.Clear();
                    state.Truncated = true;
                    continue;
                case ChangeEnvelope.Delete:
                    var gone = KeyText(columns, keyAt, row);
                    var known = state.Latest.TryGetValue(gone, out var before);
                    deleted = (row, before, known || state.Truncated);
                    state.Latest[gone] = null;
                    continue;
            }

            var self = KeyText(columns, keyAt, row);
            if (marks?[row] is not null)
            {
                // A key change is a delete of the old key and, next in the transaction, the insert of the new one.
                var keyChange = ops[row] == ChangeEnvelope.Insert && deleted is { } d && d.Row == row - 1 && lsns[row] == lsns[d.Row] && seqs[row] == seqs[d.Row] + 1;
                var from = keyChange ? KeyText(columns, keyAt, row - 1) : self;
                var (version, inWrite) = keyChange ? (deleted!.Value.Before, deleted.Value.Known) : (state.Latest.GetValueOrDefault(from), state.Latest.ContainsKey(from) || state.Truncated);
                if (inWrite) { sources[row] = version is null ? Source.None : new Source(version, null); }
                else if (stored is null) { sources[row] = Source.None; }
                else
                {
                    sources[row] = new Source(null, from);
                    lookups.Add(from);
                }
            }

            state.Latest[self] = new Version(run, row);
        }

        var markedFields = (marks ?? []).Where(m => m is not null).SelectMany(m => m!).Distinct().Select(c => schema.Fields[c]).ToList();
        var found = lookups.Count == 0 ? [] : Current(stored!, key, lookups, markedFields);
        // An insert with values not carried is a key change's: when the old key is gone, its delete (just before the
        // insert) was stored by an earlier write, and the old key's last change before it holds the values.
        var moved = Enumerable.Range(0, rows.Count)
            .Where(r => sources[r]?.LakeKey is { } k && !found.ContainsKey(k) && ops[r] == ChangeEnvelope.Insert && lsns[r] is not null && seqs[r] is not null)
            .ToHashSet();
        var removed = moved.Count == 0 ? [] : Removed(stored!, key, moved.Select(r => (lsns[r]!.Value, seqs[r]!.Value - 1)).ToList(), markedFields);
        for (var row = 0; row < rows.Count; row++)
        {
            if (sources[row] is not { } source) { continue; }
            object?[]? values = null;
            if (source.Version is { } v && !v.Run.Refused[v.Row]) { values = marks![row]!.Select(c => v.Run.Value(schema.Fields[c].Name, v.Row)).ToArray(); }
            else if (source.LakeKey is { } k && found.TryGetValue(k, out var current)) { values = marks![row]!.Select(c => current.GetValueOrDefault(schema.Fields[c].Name)).ToArray(); }
            else if (moved.Contains(row) && removed.TryGetValue((lsns[row]!.Value, seqs[row]!.Value - 1), out var old)) { values = marks![row]!.Select(c => old.GetValueOrDefault(schema.Fields[c].Name)).ToArray(); }

            if (values is null)
            {
                run.Refused[row] = true;
                continue;
            }

            var i = 0;
            foreach (var c in marks![row]!) { columns[c].SetValue(values[i++], row); }
            columns[unchangedAt].SetValue(null, row);
        }

        var verbatim = rows.HasVerbatim ? Enumerable.Range(0, schema.Fields.Count).Select(rows.Verbatim).ToArray() : null;
        return (new ColumnBatch(schema, columns, null, rows.Count, verbatim), run.Refused.Contains(true) ? run.Refused : null);
    }

    /// <summary>Why a refused row was not written (its letter's reason).</summary>
    public string Refusal(string table) =>
        $"the change did not carry these values (TOASTed values it left unchanged), and {sink} holds no earlier version of the row of '{table}' to take them from";

    /// <summary>The mirror's current values of <paramref name="columns"/> for each key in <paramref name="keys"/> (as <see cref="KeyText"/> writes them).</summary>
    private Dictionary<string, Dictionary<string, object?>> Current(LakeTable table, IReadOnlyList<string> key, IReadOnlyCollection<string> keys, IReadOnlyList<FieldSpec> columns)
    {
        var result = new Dictionary<string, Dictionary<string, object?>>(StringComparer.Ordinal);
        var held = columns.Where(c => table.Columns.Any(t => t.Name == c.Name)).ToList();
        var keyExpr = KeySql(key);
        var select = string.Join(", ", held.Select(c => c.Type is FieldType.String or FieldType.Decimal ? $"CAST({LakeQueryEngine.Quote(c.Name)} AS VARCHAR)" : LakeQueryEngine.Quote(c.Name)));
        using var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        using var cmd = db.CreateCommand();
        // One pass over the mirror for all the keys (a join with them), however many there are.
        cmd.CommandText = $"WITH _wanted(_k) AS (VALUES {string.Join(", ", keys.Select(k => $"({LakeQueryEngine.Literal(k)})"))}) " +
                          $"SELECT {keyExpr}{(held.Count > 0 ? ", " + select : "")} FROM ({LakeQueryEngine.SourceOf(table, lake.Files(table.QualifiedName))}) " +
                          $"WHERE {keyExpr} IN (SELECT _k FROM _wanted)";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            var values = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var i = 0; i < held.Count; i++) { values[held[i].Name] = Typed(r.IsDBNull(i + 1) ? null : r.GetValue(i + 1), held[i].Type); }
            result[r.GetString(0)] = values;
        }

        return result;
    }

    /// <summary>
    /// For each position of a stored delete: the values of <paramref name="columns"/> the deleted key had in its last
    /// stored change before it (the old key of a key change whose insert comes in a later write). Read from the changes
    /// as stored, since the current state no longer holds the key; a fold keeps that change below the delete's
    /// tombstone until the source's low-water mark is past the delete (<see cref="MirrorSql.Folded"/>), by when the insert is stored.
    /// </summary>
    private Dictionary<(long Lsn, long Seq), Dictionary<string, object?>> Removed(LakeTable table, IReadOnlyList<string> key, IReadOnlyCollection<(long Lsn, long Seq)> deletes, IReadOnlyList<FieldSpec> columns)
    {
        var result = new Dictionary<(long, long), Dictionary<string, object?>>();
        var held = columns.Where(c => table.Columns.Any(t => t.Name == c.Name)).ToList();
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        var select = string.Join("", held.Select(c => ", " + (c.Type is FieldType.String or FieldType.Decimal ? $"CAST(c.{LakeQueryEngine.Quote(c.Name)} AS VARCHAR)" : $"c.{LakeQueryEngine.Quote(c.Name)}")));
        using var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        using var cmd = db.CreateCommand();
        cmd.CommandText =
            $"WITH _c AS ({LakeQueryEngine.RowsOf(table, lake.Files(table.QualifiedName))}), " +
            $"_w(_l, _s) AS (VALUES {string.Join(", ", deletes.Select(d => string.Create(CultureInfo.InvariantCulture, $"({d.Lsn}, {d.Seq})")))}), " +
            $"_d AS (SELECT DISTINCT _w._l, _w._s, {string.Join(", ", key.Select(k => $"_c.{LakeQueryEngine.Quote(k)}"))} FROM _c JOIN _w ON _c.{lsn} = _w._l AND _c.{seq} = _w._s WHERE _c.{op} = '{ChangeEnvelope.Delete}') " +
            $"SELECT _d._l, _d._s{select} FROM _c c JOIN _d ON {string.Join(" AND ", key.Select(k => $"c.{LakeQueryEngine.Quote(k)} = _d.{LakeQueryEngine.Quote(k)}"))} " +
            $"WHERE c.{op} NOT IN ('{ChangeEnvelope.Delete}', '{ChangeEnvelope.Truncate}') AND (c.{lsn} < _d._l OR (c.{lsn} = _d._l AND c.{seq} < _d._s)) " +
            $"QUALIFY row_number() OVER (PARTITION BY _d._l, _d._s ORDER BY c.{lsn} DESC, c.{seq} DESC) = 1";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            var values = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var i = 0; i < held.Count; i++) { values[held[i].Name] = Typed(r.IsDBNull(i + 2) ? null : r.GetValue(i + 2), held[i].Type); }
            result[(Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture))] = values;
        }

        return result;
    }

    /// <summary>A value DuckDB read, as the batch's column of that type holds it.</summary>
    private static object? Typed(object? value, FieldType type) => value switch
    {
        null => null,
        DateTimeOffset o when type == FieldType.Timestamp => o.UtcDateTime,
        DateTime t when type == FieldType.Date => DateOnly.FromDateTime(t),
        _ => type switch
        {
            FieldType.String or FieldType.Decimal => Convert.ToString(value, CultureInfo.InvariantCulture),
            FieldType.Integer => Convert.ToInt64(value, CultureInfo.InvariantCulture),
            FieldType.Double => Convert.ToDouble(value, CultureInfo.InvariantCulture),
            FieldType.Boolean => Convert.ToBoolean(value, CultureInfo.InvariantCulture),
            FieldType.Timestamp => DateTime.SpecifyKind(Convert.ToDateTime(value, CultureInfo.InvariantCulture), DateTimeKind.Utc),
            _ => value,
        },
    };

    /// <summary>The SQL of a stored row's key as one text, as <see cref="KeyText"/> writes a batch row's.</summary>
    internal static string KeySql(IReadOnlyList<string> key) =>
        $"concat_ws(chr({(int)Separator}), {string.Join(", ", key.Select(k => $"CAST({LakeQueryEngine.Quote(k)} AS VARCHAR)"))})";

    /// <summary>A row's key as one text, as DuckDB's <c>CAST(... AS VARCHAR)</c> writes each part.</summary>
    internal static string KeyText(Array[] columns, int[] keyAt, int row) =>
        string.Join(Separator, keyAt.Select(c => columns[c].GetValue(row) switch
        {
            null => "",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            var v => v.ToString() ?? "",
        }));

    /// <summary>The changes of one table's run in this write, as filled in.</summary>
    private sealed record Run(TableSchema Schema, Array[] Columns, bool[] Refused)
    {
        public object? Value(string column, int row) => Schema.IndexOf(column) is >= 0 and var at ? Columns[at].GetValue(row) : null;
    }

    private sealed record Version(Run Run, int Row);

    /// <summary>Where a row's unchanged values come from: a version of this write, the mirror's current row of a key, or nowhere.</summary>
    private sealed record Source(Version? Version, string? LakeKey)
    {
        public static readonly Source None = new(null, null);
    }

    private sealed class TableState
    {
        /// <summary>Each key's latest version in this write; null after a delete (or a refused change).</summary>
        public Dictionary<string, Version?> Latest { get; } = new(StringComparer.Ordinal);

        /// <summary>A truncate came earlier in this write: the mirror's rows from before it are gone.</summary>
        public bool Truncated { get; set; }
    }
}
