using Sluice.Core;

namespace Sluice.Models;

/// <summary>
/// How a stateful model's result differs from its stored table (columns the engine fills left aside), and whether its
/// <see cref="OnSchemaChange"/> policy allows it. Types are compared by kind (text, number, boolean, date, timestamp), so
/// that what differs only by engine or width (INTEGER and BIGINT, numeric(18,2) and DECIMAL(38,2)) is no change.
/// </summary>
public sealed record SchemaChange(
    IReadOnlyList<(string Name, string Type)> Added, IReadOnlyList<string> Removed, IReadOnlyList<(string Name, string From, string To)> Retyped)
{
    public bool Any => Added.Count + Removed.Count + Retyped.Count > 0;

    public static SchemaChange Compare(IReadOnlyList<(string Name, string Type)> table, IReadOnlyList<(string Name, string Type)> result, IReadOnlyCollection<string> engineColumns)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(engineColumns);
        var stored = table.Where(c => !engineColumns.Contains(c.Name)).ToList();
        var added = result.Where(r => stored.All(s => s.Name != r.Name)).ToList();
        var removed = stored.Where(s => result.All(r => r.Name != s.Name)).Select(s => s.Name).ToList();
        var retyped = stored.Join(result, s => s.Name, r => r.Name, (s, r) => (s.Name, From: s.Type, To: r.Type))
            .Where(c => Kind(c.From) != Kind(c.To)).ToList();
        return new SchemaChange(added, removed, retyped);
    }

    /// <summary>Throws when the policy does not allow the change: any change under fail, a retyped column under append_new_columns.</summary>
    public void Check(ModelDefinition model, OnSchemaChange policy)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (policy == OnSchemaChange.Fail && Any)
        {
            throw new SluiceException($"{model.Name} ({model.File}): on_schema_change is fail and the result's columns differ from the table: {Describe()}; " +
                                      "change the SELECT back, or set on_schema_change: append_new_columns or sync_all_columns");
        }

        if (policy == OnSchemaChange.AppendNewColumns && Retyped.Count > 0)
        {
            throw new SluiceException($"{model.Name} ({model.File}): {string.Join(", ", Retyped.Select(r => $"column {r.Name} is {r.To} in the result but {r.From} in the table"))}; " +
                                      "on_schema_change: append_new_columns never converts a column: cast it in the SELECT, or set on_schema_change: sync_all_columns");
        }
    }

    public string Describe() => string.Join("; ", new[]
    {
        Added.Count > 0 ? "added " + string.Join(", ", Added.Select(a => $"{a.Name} ({a.Type})")) : null,
        Removed.Count > 0 ? "removed " + string.Join(", ", Removed) : null,
        Retyped.Count > 0 ? "retyped " + string.Join(", ", Retyped.Select(r => $"{r.Name} ({r.From} -> {r.To})")) : null,
    }.OfType<string>());

    /// <summary>The kind of a DuckDB or PostgreSQL type name.</summary>
    public static string Kind(string type)
    {
        ArgumentNullException.ThrowIfNull(type);
        var t = type.Trim().ToUpperInvariant();
        if (t.StartsWith("TIMESTAMP", StringComparison.Ordinal)) { return "timestamp"; }
        if (t == "DATE") { return "date"; }
        if (t.StartsWith("INTERVAL", StringComparison.Ordinal)) { return "interval"; }
        if (t is "BOOLEAN" or "BOOL") { return "boolean"; }
        if (t.Contains("CHAR", StringComparison.Ordinal) || t is "TEXT" or "UUID" or "STRING") { return "text"; }
        if (t.Contains("INT", StringComparison.Ordinal) || t.StartsWith("DECIMAL", StringComparison.Ordinal) || t.StartsWith("NUMERIC", StringComparison.Ordinal)
            || t is "DOUBLE" or "DOUBLE PRECISION" or "FLOAT" or "REAL")
        {
            return "number";
        }

        return t;
    }
}
