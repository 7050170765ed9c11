using System.Text;
using System.Text.Json;

using Sluice.Lake;

namespace Sluice.Cli;

public enum QueryFormat
{
    Table,
    Csv,
    Json,
}

/// <summary>An instant a listing prints: in a table as <c>yyyy-MM-dd HH:mm:ss</c> (UTC), for programs (CSV, JSON) as ISO 8601 with <c>Z</c>.</summary>
public readonly record struct UtcInstant(DateTimeOffset Value)
{
    public static UtcInstant? Of(DateTimeOffset? value) => value is { } v ? new UtcInstant(v) : null;

    public string Iso => Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public override string ToString() => Value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Prints query results: an aligned table for people, CSV (header and rows, nothing else) and JSON for programs.</summary>
public static class QueryResultFormatter
{
    /// <summary>The narrowest a column is cut to, so that a cut table still shows the start of every value.</summary>
    private const int NarrowestColumn = 6;

    /// <param name="width">For a table: the width to cut wide columns to (a terminal's); null prints every value whole.</param>
    public static string Format(QueryResult result, QueryFormat format, int? width = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        return format switch
        {
            QueryFormat.Csv => Csv(result),
            QueryFormat.Json => Json(result),
            _ => Table(result, width),
        };
    }

    private static string Table(QueryResult result, int? width)
    {
        var cells = result.Rows.Select(r => r.Select(v => v is null ? "NULL" : Text(v)).ToArray()).ToList();
        var widths = result.Columns.Select((c, i) => Math.Max(c.Length, cells.Count == 0 ? 0 : cells.Max(r => r[i].Length))).ToArray();
        var cut = width is { } w && Narrow(widths, w);
        var sb = new StringBuilder();
        sb.AppendJoin(" | ", result.Columns.Select((c, i) => Fit(c, widths[i]).PadRight(widths[i]))).Append('\n');
        sb.AppendJoin("-+-", widths.Select(w => new string('-', w))).Append('\n');
        foreach (var row in cells)
        {
            sb.AppendJoin(" | ", row.Select((v, i) => IsNumeric(result, i) ? Fit(v, widths[i]).PadLeft(widths[i]) : Fit(v, widths[i]).PadRight(widths[i]))).Append('\n');
        }

        sb.Append('(').Append(cells.Count).Append(cells.Count == 1 ? " row" : " rows")
            .Append(result.Truncated ? " shown: the result has more, cut at the row limit" : "")
            .Append(cut ? "; wide columns cut to the terminal's width, --wide prints them whole)" : ")").Append('\n');
        return sb.ToString();
    }

    /// <summary>Narrows the widest columns until the table fits <paramref name="width"/> (or every column is at its narrowest); true when it cut any.</summary>
    private static bool Narrow(int[] widths, int width)
    {
        var cut = false;
        while (widths.Sum() + (3 * (widths.Length - 1)) > width)
        {
            var widest = Array.IndexOf(widths, widths.Max());
            if (widths[widest] <= NarrowestColumn) { break; }
            var excess = widths.Sum() + (3 * (widths.Length - 1)) - width;
            // Down to the next widest column at most, so that several wide columns share the cut.
            var next = widths.Where((_, i) => i != widest).DefaultIfEmpty(0).Max();
            widths[widest] = Math.Max(NarrowestColumn, widths[widest] - Math.Max(1, Math.Min(excess, widths[widest] - next)));
            cut = true;
        }

        return cut;
    }

    private static string Fit(string text, int width) => text.Length <= width ? text : string.Concat(text.AsSpan(0, width - 1), "…");

    /// <summary>A value as text: nested values (DuckDB LIST, STRUCT, MAP) written out as DuckDB prints them, not as .NET type names.</summary>
    public static string Text(object? value) => value switch
    {
        null => "NULL",
        string s => s,
        byte[] bytes => "\\x" + Convert.ToHexString(bytes),
        Stream stream => "\\x" + Convert.ToHexString(ReadAll(stream)),
        System.Collections.IDictionary map => "{" + string.Join(", ", map.Keys.Cast<object>().Select(k => $"{Nested(k)}: {Nested(map[k])}")) + "}",
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Nested)) + "]",
        _ => LakeQueryEngine.FormatValue(value),
    };

    private static string Nested(object? value) => value is string s ? "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'" : Text(value);

    private static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static bool IsNumeric(QueryResult result, int column) =>
        result.Rows.Any(r => r[column] is not null) && result.Rows.All(r => r[column] is null or sbyte or byte or short or int or long or ushort or uint or ulong or float or double or decimal or System.Numerics.BigInteger);

    private static string Csv(QueryResult result)
    {
        var sb = new StringBuilder();
        sb.AppendJoin(',', result.Columns.Select(CsvCell)).Append('\n');
        foreach (var row in result.Rows)
        {
            sb.AppendJoin(',', row.Select(v => CsvCell(v switch { null => "", UtcInstant t => t.Iso, _ => Text(v) }))).Append('\n');
        }

        return sb.ToString();
    }

    private static string CsvCell(string value) =>
        value.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static string Json(QueryResult result)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var row in result.Rows)
            {
                json.WriteStartObject();
                for (var i = 0; i < result.Columns.Count; i++)
                {
                    json.WritePropertyName(result.Columns[i]);
                    WriteValue(json, row[i]);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    private static void WriteValue(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null: json.WriteNullValue(); break;
            case bool b: json.WriteBooleanValue(b); break;
            case long or int or short or sbyte or byte or ushort or uint: json.WriteNumberValue(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case ulong u: json.WriteNumberValue(u); break;
            case double d when double.IsFinite(d): json.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): json.WriteNumberValue(f); break;
            case decimal m: json.WriteNumberValue(m); break;
            case UtcInstant t: json.WriteStringValue(t.Iso); break;
            case DateTimeOffset o: json.WriteStringValue(new UtcInstant(o).Iso); break;
            case string or byte[] or Stream: json.WriteStringValue(Text(value)); break;
            case System.Collections.IDictionary map:
                json.WriteStartObject();
                foreach (var key in map.Keys) { json.WritePropertyName(Text(key)); WriteValue(json, map[key]); }
                json.WriteEndObject();
                break;
            case System.Collections.IEnumerable list:
                json.WriteStartArray();
                foreach (var item in list) { WriteValue(json, item); }
                json.WriteEndArray();
                break;
            default: json.WriteStringValue(LakeQueryEngine.FormatValue(value)); break;
        }
    }
}
