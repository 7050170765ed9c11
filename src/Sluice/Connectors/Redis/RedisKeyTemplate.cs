using System.Text;
using Sluice.Core;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Redis;

/// <summary>
/// A key written with column names in braces (<c>user:{user_id}</c>, <c>visits:{tenant}:{day}</c>): literal text and
/// columns, checked when the recipe loads (braces paired, at least one column) and against each table's columns at write.
/// </summary>
public sealed class RedisKeyTemplate
{
    private readonly IReadOnlyList<(string Text, bool Column)> _parts;

    private RedisKeyTemplate(IReadOnlyList<(string Text, bool Column)> parts) => _parts = parts;

    /// <summary>The template as written (after environment expansion): <c>user:{user_id}</c>.</summary>
    public string Text => string.Concat(_parts.Select(p => p.Column ? "{" + p.Text + "}" : p.Text));

    public IReadOnlyList<string> Columns => _parts.Where(p => p.Column).Select(p => p.Text).ToList();

    /// <summary>The template, or null with <paramref name="error"/> saying what is wrong with it.</summary>
    public static RedisKeyTemplate? Parse(string text, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = new List<(string, bool)>();
        var literal = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '}') { error = $"'}}' at character {i + 1} closes no '{{'"; return null; }
            if (text[i] != '{') { literal.Append(text[i]); continue; }
            var end = text.IndexOf('}', i + 1);
            if (end < 0) { error = $"'{{' at character {i + 1} is not closed"; return null; }
            var name = text[(i + 1)..end];
            if (!Http.Ingest.HttpIngestOptions.IdentifierRegex().IsMatch(name)) { error = $"'{{{name}}}' must name a column (letters, digits, '_')"; return null; }
            if (literal.Length > 0) { parts.Add((literal.ToString(), false)); literal.Clear(); }
            parts.Add((name, true));
            i = end;
        }

        if (literal.Length > 0) { parts.Add((literal.ToString(), false)); }
        if (!parts.Any(p => p.Item2)) { error = "names no column: every row would write the same key (write one in braces, e.g. \"user:{user_id}\")"; return null; }
        error = null;
        return new RedisKeyTemplate(parts);
    }

    /// <summary>The column index of each part (-1 for literal text); a column the table lacks stops the sink, naming it.</summary>
    public int[] Bind(TableSchema schema, string sink)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return _parts.Select(p =>
        {
            if (!p.Column) { return -1; }
            var at = schema.IndexOf(p.Text);
            return at >= 0 ? at : throw new SluiceException($"redis sink '{sink}': the key names column '{p.Text}', which table '{schema.Table}' does not have (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))})");
        }).ToArray();
    }

    /// <summary>The key of one row, or null when one of its key columns is NULL.</summary>
    public string? Format(ColumnBatch table, int[] bound, int row)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(bound);
        var key = new StringBuilder();
        for (var i = 0; i < _parts.Count; i++)
        {
            if (bound[i] < 0) { key.Append(_parts[i].Text); continue; }
            if (RedisValueText.Of(table, bound[i], row) is not { } value) { return null; }
            key.Append(value);
        }

        return key.ToString();
    }
}

/// <summary>A value as the generic Redis sink writes it: verbatim text, exact decimals, UTC timestamps as <see cref="RowJson"/> writes them, <c>true</c>/<c>false</c>.</summary>
internal static class RedisValueText
{
    public static string? Of(ColumnBatch table, int column, int row) => table.Value(column, row) switch
    {
        null when table.Verbatim(column)?[row] is null => null,
        bool b => b ? "true" : "false",
        _ => Core.DeadLetters.UnholdableValues.Text(table, column, row),
    };
}
