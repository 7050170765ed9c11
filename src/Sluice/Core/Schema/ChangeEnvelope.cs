using System.Text.Json;

namespace Sluice.Core.Schema;

/// <summary>
/// The columns a change-data-capture source appends to every row after the table's own (docs/CDC.md, "Change events"):
/// what happened (<see cref="Op"/>), where it sits in the source's history (<see cref="Lsn"/>, <see cref="Seq"/>:
/// unique per change and ordered as the changes were committed), the transaction (<see cref="TxId"/>,
/// <see cref="CommitTs"/>), the old row (<see cref="Before"/>) and the columns whose value was not sent
/// (<see cref="Unchanged"/>). Engine-level, so steps and sinks read the envelope without knowing the source.
/// </summary>
public static class ChangeEnvelope
{
    public const string Op = "_op";
    public const string Lsn = "_lsn";
    public const string Seq = "_seq";
    public const string TxId = "_txid";
    public const string CommitTs = "_commit_ts";
    public const string Before = "_before";
    public const string Unchanged = "_unchanged";

    /// <summary>Snapshot read, insert ("create"), update, delete, truncate.</summary>
    public const string Read = "r", Insert = "c", Update = "u", Delete = "d", Truncate = "t";

    /// <summary>The envelope's columns, in the order they follow the table's columns.</summary>
    public static IReadOnlyList<FieldSpec> Fields { get; } =
    [
        new(Op, FieldType.String, true),
        new(Lsn, FieldType.Integer, true),
        new(Seq, FieldType.Integer, true),
        new(TxId, FieldType.Integer, false),
        new(CommitTs, FieldType.Timestamp, false),
        new(Before, FieldType.String, false),
        new(Unchanged, FieldType.String, false),
    ];

    public static bool IsEnvelope(string column) => column.StartsWith('_') && Fields.Any(f => f.Name == column);

    /// <summary>
    /// The column names a row's <see cref="Unchanged"/> value lists (a JSON array of names; NULL when every value was
    /// sent). Such a column holds NULL in the row, but its value is the one it had before the change, not NULL.
    /// </summary>
    public static IReadOnlyList<string> UnchangedColumns(string? value)
    {
        if (string.IsNullOrEmpty(value)) { return []; }
        return JsonSerializer.Deserialize<string[]>(value) ?? [];
    }

    /// <summary>The <see cref="Unchanged"/> value for these names (null for none).</summary>
    public static string? UnchangedValue(IReadOnlyCollection<string> columns) => columns.Count == 0 ? null : JsonSerializer.Serialize(columns);

    /// <summary>The column indexes one row marks unchanged, or null for none.</summary>
    public static HashSet<int>? UnchangedInRow(ColumnBatch table, int row)
    {
        ArgumentNullException.ThrowIfNull(table);
        var at = table.Schema.IndexOf(Unchanged);
        return at >= 0 && table.Strings(at)[row] is { Length: > 0 } text
            ? UnchangedColumns(text).Select(table.Schema.IndexOf).Where(i => i >= 0).ToHashSet()
            : null;
    }

    /// <summary>For each row, the set of column indexes it marks unchanged, or null when the table has no marker column or the row marks none.</summary>
    public static HashSet<int>?[]? UnchangedByRow(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var at = table.Schema.IndexOf(Unchanged);
        if (at < 0) { return null; }
        var values = table.Strings(at);
        HashSet<int>?[]? rows = null;
        for (var row = 0; row < table.Count; row++)
        {
            if (values[row] is not { Length: > 0 }) { continue; }
            rows ??= new HashSet<int>?[table.Count];
            rows[row] = UnchangedInRow(table, row);
        }

        return rows;
    }
}
