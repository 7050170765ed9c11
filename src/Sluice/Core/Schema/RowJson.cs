using System.Globalization;
using System.Text.Json;

namespace Sluice.Core.Schema;

/// <summary>
/// A row as a JSON object, as the Redis and HTTP sinks send it: every column except the pipeline's own
/// (names starting with <c>_</c>), timestamps as fixed-width UTC ISO-8601 (<c>2026-01-08T14:21:52.000000Z</c>, so
/// two of them compare correctly as text), NaN and infinities as null.
/// </summary>
public static class RowJson
{
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'";

    public static void Write(Utf8JsonWriter json, ColumnBatch table, int row)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(table);
        json.WriteStartObject();
        var fields = table.Schema.Fields;
        for (var c = 0; c < fields.Count; c++)
        {
            if (fields[c].Name.StartsWith('_')) { continue; }
            json.WritePropertyName(fields[c].Name);
            WriteValue(json, table.Columns[c].GetValue(row));
        }

        json.WriteEndObject();
    }

    public static void WriteValue(Utf8JsonWriter json, object? value)
    {
        ArgumentNullException.ThrowIfNull(json);
        switch (value)
        {
            case null: json.WriteNullValue(); break;
            case long l: json.WriteNumberValue(l); break;
            case double d when double.IsFinite(d): json.WriteNumberValue(d); break;
            case double: json.WriteNullValue(); break;
            case bool b: json.WriteBooleanValue(b); break;
            case DateTime t: json.WriteStringValue(Timestamp(t)); break;
            case DateOnly d: json.WriteStringValue(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)); break;
            default: json.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    public static string Timestamp(DateTime utc) => utc.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    public static byte[] ToUtf8(ColumnBatch table, int row)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer)) { Write(json, table, row); }
        return buffer.WrittenSpan.ToArray();
    }
}
