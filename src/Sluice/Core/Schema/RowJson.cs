using System.Globalization;
using System.Text.Json;

namespace Sluice.Core.Schema;

/// <summary>
/// A row as a JSON object, as the Redis and HTTP sinks send it: every column except the pipeline's own
/// (names starting with <c>_</c>), timestamps as fixed-width UTC ISO-8601 (<c>2026-01-08T14:21:52.000000Z</c>, so
/// two of them compare correctly as text), NaN and infinities of a double as null. An exact decimal is a JSON number
/// with every digit of its text (<c>12345678901234567890.123456789</c>), or a string when it is <c>NaN</c>,
/// <c>Infinity</c> or <c>-Infinity</c>; a date or time .NET cannot hold is its Postgres text as a string
/// (<c>infinity</c>, <c>10000-01-01 00:00:00+00</c>, <c>0044-03-15 BC</c>). A column a change row marks unchanged
/// (<see cref="ChangeEnvelope.Unchanged"/>) is left out of its object: absent means "as it was", null means NULL.
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
        var unchanged = ChangeEnvelope.UnchangedInRow(table, row);
        for (var c = 0; c < fields.Count; c++)
        {
            if (fields[c].Name.StartsWith('_') || unchanged?.Contains(c) == true) { continue; }
            json.WritePropertyName(fields[c].Name);
            if (table.Verbatim(c)?[row] is { } verbatim) { json.WriteStringValue(verbatim); }
            else if (fields[c].Type == FieldType.Decimal) { WriteDecimal(json, table.Strings(c)[row]); }
            else { WriteValue(json, table.Columns[c].GetValue(row)); }
        }

        json.WriteEndObject();
    }

    /// <summary>Rows <paramref name="from"/>..<paramref name="from"/>+<paramref name="count"/> as a JSON array, with one typed writer per column (no boxing per value).</summary>
    public static void WriteArray(Utf8JsonWriter json, ColumnBatch table, int from, int count)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(table);
        var fields = table.Schema.Fields;
        var names = new List<JsonEncodedText>();
        var writers = new List<Action<int>>();
        var columns = new List<int>();
        var unchanged = ChangeEnvelope.UnchangedByRow(table);
        for (var c = 0; c < fields.Count; c++)
        {
            if (fields[c].Name.StartsWith('_')) { continue; }
            columns.Add(c);
            names.Add(JsonEncodedText.Encode(fields[c].Name));
            var verbatim = table.Verbatim(c);
            var column = table.Columns[c];
            writers.Add(column switch
            {
                string?[] a when fields[c].Type == FieldType.Decimal => row => WriteDecimal(json, a[row]),
                _ when verbatim is not null => row => { if (verbatim[row] is { } v) { json.WriteStringValue(v); } else { WriteValue(json, column.GetValue(row)); } },
                long?[] a => row => { if (a[row] is { } v) { json.WriteNumberValue(v); } else { json.WriteNullValue(); } },
                double?[] a => row => { if (a[row] is { } v && double.IsFinite(v)) { json.WriteNumberValue(v); } else { json.WriteNullValue(); } },
                string?[] a => row => { if (a[row] is { } v) { json.WriteStringValue(v); } else { json.WriteNullValue(); } },
                DateTime?[] a => row => { if (a[row] is { } v) { WriteTimestamp(json, v); } else { json.WriteNullValue(); } },
                var other => row => WriteValue(json, other.GetValue(row)),
            });
        }

        json.WriteStartArray();
        for (var row = from; row < from + count; row++)
        {
            json.WriteStartObject();
            var skip = unchanged?[row];
            for (var c = 0; c < writers.Count; c++)
            {
                if (skip?.Contains(columns[c]) == true) { continue; }
                json.WritePropertyName(names[c]);
                writers[c](row);
            }

            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    /// <summary>An exact decimal's text as a JSON number (Postgres never writes one JSON cannot read); NaN and the infinities as strings.</summary>
    private static void WriteDecimal(Utf8JsonWriter json, string? text)
    {
        if (text is null) { json.WriteNullValue(); }
        else if (text is "NaN" or "Infinity" or "-Infinity") { json.WriteStringValue(text); }
        else { json.WriteRawValue(text, skipInputValidation: false); }
    }

    private static void WriteTimestamp(Utf8JsonWriter json, DateTime utc)
    {
        Span<byte> text = stackalloc byte[TimestampLength];
        FormatTimestamp(utc, text);
        json.WriteStringValue(text);
    }

    /// <summary>The length of <see cref="TimestampFormat"/>'s text: <c>2026-01-08T14:21:52.000000Z</c>.</summary>
    public const int TimestampLength = 27;

    /// <summary>
    /// <see cref="TimestampFormat"/> written digit by digit into UTF-8: a general format string is parsed again for
    /// every value, and this runs once per row and timestamp column of every batch a sink sends.
    /// </summary>
    public static void FormatTimestamp(DateTime utc, Span<byte> text)
    {
        var date = DateOnly.FromDateTime(utc);
        var time = utc.TimeOfDay;
        Digits(text[..4], date.Year);
        text[4] = (byte)'-';
        Digits(text.Slice(5, 2), date.Month);
        text[7] = (byte)'-';
        Digits(text.Slice(8, 2), date.Day);
        text[10] = (byte)'T';
        Digits(text.Slice(11, 2), time.Hours);
        text[13] = (byte)':';
        Digits(text.Slice(14, 2), time.Minutes);
        text[16] = (byte)':';
        Digits(text.Slice(17, 2), time.Seconds);
        text[19] = (byte)'.';
        Digits(text.Slice(20, 6), (int)(utc.Ticks % TimeSpan.TicksPerSecond / 10));
        text[26] = (byte)'Z';
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (var i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + value % 10);
            value /= 10;
        }
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

    public static string Timestamp(DateTime utc)
    {
        Span<byte> text = stackalloc byte[TimestampLength];
        FormatTimestamp(utc, text);
        return System.Text.Encoding.ASCII.GetString(text);
    }

    public static byte[] ToUtf8(ColumnBatch table, int row)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer)) { Write(json, table, row); }
        return buffer.WrittenSpan.ToArray();
    }
}
