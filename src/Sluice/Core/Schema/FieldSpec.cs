namespace Sluice.Core.Schema;

/// <summary>A field; <paramref name="Precision"/> and <paramref name="Scale"/> are a decimal's declared digits (0: unbounded).</summary>
public sealed record FieldSpec(string Name, FieldType Type, bool Required, int Precision = 0, int Scale = 0);

public sealed class TableSchema
{
    public TableSchema(string table, IReadOnlyList<FieldSpec> fields)
    {
        Table = table;
        Fields = fields;
    }

    public string Table { get; }

    public IReadOnlyList<FieldSpec> Fields { get; }

    /// <summary>
    /// The columns that identify a row in the source (a change-data-capture table's primary key, else its replica
    /// identity index); empty when the source knows none. A mirror sink keeps one row per key.
    /// </summary>
    public IReadOnlyList<string> Key { get; init; } = [];

    public int IndexOf(string name)
    {
        for (var i = 0; i < Fields.Count; i++)
        {
            if (string.Equals(Fields[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}
