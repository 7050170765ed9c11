using System.Text;
using System.Text.Json;

namespace Sluice.Lake;

public enum QueryFormat
{
    Table,
    Csv,
    Json,
}

/// <summary>Prints query results: an aligned table for people, CSV (header and rows, nothing else) and JSON for programs.</summary>
public static class QueryResultFormatter
{
    public static string Format(QueryResult result, QueryFormat format)
    {
        ArgumentNullException.ThrowIfNull(result);
        return format switch
        {
            QueryFormat.Csv => Csv(result),
            QueryFormat.Json => Json(result),
            _ => Table(result),
        };
    }

    private static string Table(QueryResult result)
    {
        var cells = result.Rows.Select(r => r.Select(v => v is null ? "NULL" : LakeQueryEngine.FormatValue(v)).ToArray()).ToList();
        var widths = result.Columns.Select((c, i) => Math.Max(c.Length, cells.Count == 0 ? 0 : cells.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        sb.AppendJoin(" | ", result.Columns.Select((c, i) => c.PadRight(widths[i]))).Append('\n');
        sb.AppendJoin("-+-", widths.Select(w => new string('-', w))).Append('\n');
        foreach (var row in cells)
        {
            sb.AppendJoin(" | ", row.Select((v, i) => IsNumeric(result, i) ? v.PadLeft(widths[i]) : v.PadRight(widths[i]))).Append('\n');
        }

        sb.Append('(').Append(cells.Count).Append(cells.Count == 1 ? " row" : " rows")
            .Append(result.Truncated ? " shown: the result has more, cut at the row limit)" : ")").Append('\n');
        return sb.ToString();
    }

    private static bool IsNumeric(QueryResult result, int column) =>
        result.Rows.Count > 0 && result.Rows.All(r => r[column] is null or sbyte or byte or short or int or long or ushort or uint or ulong or float or double or decimal or System.Numerics.BigInteger);

    private static string Csv(QueryResult result)
    {
        var sb = new StringBuilder();
        sb.AppendJoin(',', result.Columns.Select(CsvCell)).Append('\n');
        foreach (var row in result.Rows)
        {
            sb.AppendJoin(',', row.Select(v => CsvCell(v is null ? "" : LakeQueryEngine.FormatValue(v)))).Append('\n');
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
            default: json.WriteStringValue(LakeQueryEngine.FormatValue(value)); break;
        }
    }
}
