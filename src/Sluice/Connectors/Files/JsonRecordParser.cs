using System.Buffers;
using System.Text;
using System.Text.Json;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Connectors.Files;

/// <summary>
/// Turns one complete JSON object into a row of a <see cref="ColumnBatchBuilder"/>, checking every field against the
/// file type: wrong type, missing required field, unparsable timestamp. Unknown properties are ignored; JSON null is
/// a missing value. On a problem the row is aborted, so an invalid record never half-lands.
/// </summary>
internal static class JsonRecordParser
{
    /// <summary>
    /// Parses the object that starts at the reader's current <see cref="JsonTokenType.StartObject"/> token. Returns false
    /// when the reader ran out of data inside the object (the row is then aborted; the caller refills and starts over).
    /// </summary>
    public static bool TryParse(ref Utf8JsonReader reader, RecordShape shape, ColumnBatchBuilder row, out FieldProblem? problem)
    {
        if (!ReadFields(ref reader, shape, row, out problem))
        {
            row.AbortRow();
            return false;
        }

        if (problem is null)
        {
            for (var i = 0; i < shape.Fields.Count; i++)
            {
                if (shape.Fields[i].Required && !row[i].IsSet)
                {
                    problem = new FieldProblem(shape.Reads[i].Source, "missing required field");
                    break;
                }
            }
        }

        if (problem is null)
        {
            row.CommitRow();
        }
        else
        {
            row.AbortRow();
        }

        return true;
    }

    /// <summary>Parses a standalone JSON text holding one object (an NDJSON line, a dead letter's payload).</summary>
    public static FieldProblem? Parse(ReadOnlySpan<byte> json, RecordShape shape, ColumnBatchBuilder row)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read())
            {
                return new FieldProblem(null, "empty record");
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return new FieldProblem(null, $"record is not a JSON object (found {Describe(reader.TokenType)})");
            }

            TryParse(ref reader, shape, row, out var problem);
            if (problem is null && reader.Read())
            {
                return new FieldProblem(null, "unexpected data after the record's closing '}'");
            }

            return problem;
        }
        catch (JsonException e)
        {
            row.AbortRow();
            return new FieldProblem(null, $"malformed JSON at byte {e.BytePositionInLine + 1}: {FirstSentence(e.Message)}");
        }
    }

    private static bool ReadFields(ref Utf8JsonReader reader, RecordShape shape, ColumnBatchBuilder row, out FieldProblem? problem)
    {
        problem = null;
        while (true)
        {
            if (!reader.Read())
            {
                return false;
            }

            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return true;
            }

            // A name that is not Unicode (a lone surrogate escape) is no declared field: its value is skipped like an unknown one's.
            var index = !reader.ValueIsEscaped ? shape.Find(reader.ValueSpan) : JsonValues.HasInvalidEscape(ref reader) ? -1 : shape.Find(reader.GetString()!);
            if (!reader.Read())
            {
                return false;
            }

            if (index < 0 || problem is not null || reader.TokenType == JsonTokenType.Null)
            {
                if (!reader.TrySkip()) { return false; }
                continue;
            }

            var read = shape.Reads[index];
            if (read.Coerce && reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                // An object or array lands as its JSON text, as written; a copy of the reader, taken before the skip, reads it.
                var start = reader;
                if (!reader.TrySkip()) { return false; }
                using var value = JsonDocument.ParseValue(ref start);
                ((TypedColumnBuilder<string>)row[index]).Set(value.RootElement.GetRawText());
                continue;
            }

            problem = SetValue(ref reader, shape.Fields[index], read, row[index], shape.Strings[index]);
            if (problem is not null && reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip())
            {
                return false;
            }
        }
    }

    private static FieldProblem? SetValue(ref Utf8JsonReader reader, FieldSpec field, FieldRead read, ColumnBuilder column, Utf8StringCache? strings)
    {
        var token = reader.TokenType;
        // Problems name the field as the file does.
        var spec = field with { Name = read.Source };
        if (token == JsonTokenType.String && JsonValues.HasInvalidEscape(ref reader))
        {
            // Decoding it would throw: checked once here for every type the text could be.
            return new FieldProblem(spec.Name, JsonValues.LoneSurrogate);
        }

        if (read.Format is not null && spec.Type is FieldType.Timestamp or FieldType.Date)
        {
            return SetFormatted(ref reader, spec, read, column);
        }

        switch (spec.Type)
        {
            case FieldType.String when token == JsonTokenType.String:
                if (!IsValidUtf8(ref reader))
                {
                    // The reader does not check the bytes of a string; decoding would replace them and land other text.
                    return new FieldProblem(spec.Name, JsonValues.InvalidUtf8);
                }

                ((TypedColumnBuilder<string>)column).Set(strings is not null && !reader.ValueIsEscaped && !reader.HasValueSequence ? strings.Get(reader.ValueSpan) : reader.GetString());
                return null;
            case FieldType.String when read.Coerce && token is JsonTokenType.Number or JsonTokenType.True or JsonTokenType.False:
                // The number's text as written (1776, 2.50, 1e3): no round trip through a double changes its digits.
                ((TypedColumnBuilder<string>)column).Set(token == JsonTokenType.Number ? Raw(ref reader) : token == JsonTokenType.True ? "true" : "false");
                return null;
            case FieldType.Integer when token == JsonTokenType.Number:
                if (reader.TryGetInt64(out var l)) { ((ValueColumnBuilder<long>)column).Set(l); return null; }
                return IsWhole(ref reader) ? new FieldProblem(spec.Name, JsonValues.OutOfIntegerRange(Snippet(ref reader))) : Wrong(ref reader, spec, "a whole number");
            case FieldType.Double when token == JsonTokenType.Number:
                // Out of a double's range a JSON number reads as infinity: refused, never stored.
                if (!JsonValues.TryGetFiniteDouble(ref reader, out var number)) { return new FieldProblem(spec.Name, JsonValues.OutOfDoubleRange(Snippet(ref reader))); }
                ((ValueColumnBuilder<double>)column).Set(number);
                return null;
            case FieldType.Boolean when token is JsonTokenType.True or JsonTokenType.False:
                ((ValueColumnBuilder<bool>)column).Set(token == JsonTokenType.True);
                return null;
            case FieldType.Timestamp when token == JsonTokenType.String:
                if (!reader.ValueIsEscaped && !reader.HasValueSequence && Timestamps.TryParseUtc(reader.ValueSpan, out var ts))
                {
                    ((ValueColumnBuilder<DateTime>)column).Set(ts);
                    return null;
                }

                if ((reader.ValueIsEscaped || reader.HasValueSequence) && Timestamps.TryParseUtc(reader.GetString().AsSpan(), out ts))
                {
                    ((ValueColumnBuilder<DateTime>)column).Set(ts);
                    return null;
                }

                return new FieldProblem(spec.Name, $"unparsable timestamp '{Snippet(ref reader)}' (expected ISO-8601, for example 2025-11-08T10:30:00Z)");
            case FieldType.Date when token == JsonTokenType.String:
                if (Timestamps.TryParseDate(reader.GetString().AsSpan(), out var d)) { ((ValueColumnBuilder<DateOnly>)column).Set(d); return null; }
                return new FieldProblem(spec.Name, $"unparsable date '{Snippet(ref reader)}' (expected YYYY-MM-DD)");
            default:
                return Wrong(ref reader, spec, Expected(spec.Type));
        }
    }

    /// <summary>A timestamp or date in the field's format: a pattern's text, or a count since 1970 as a number or a text.</summary>
    private static FieldProblem? SetFormatted(ref Utf8JsonReader reader, FieldSpec spec, FieldRead read, ColumnBuilder column)
    {
        var token = reader.TokenType;
        if (spec.Type == FieldType.Timestamp && read.IsEpoch && token == JsonTokenType.Number)
        {
            if (reader.TryGetDecimal(out var count) && read.TryEpoch(count, out var instant)) { ((ValueColumnBuilder<DateTime>)column).Set(instant); return null; }
            return new FieldProblem(spec.Name, $"unparsable timestamp {Snippet(ref reader)} (expected {read.Expected(spec.Type)}; years 1 to 9999)");
        }

        if (token != JsonTokenType.String) { return Wrong(ref reader, spec, read.IsEpoch ? "a number" : "text"); }
        var text = reader.GetString().AsSpan();
        if (spec.Type == FieldType.Timestamp && read.TryParseTimestamp(text, out var utc)) { ((ValueColumnBuilder<DateTime>)column).Set(utc); return null; }
        if (spec.Type == FieldType.Date && read.TryParseDate(text, out var date)) { ((ValueColumnBuilder<DateOnly>)column).Set(date); return null; }
        return new FieldProblem(spec.Name, $"unparsable {spec.Type.Name()} '{Snippet(ref reader)}' (expected {read.Expected(spec.Type)})");
    }

    private static string Raw(ref Utf8JsonReader reader) =>
        reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence.ToArray()) : Encoding.UTF8.GetString(reader.ValueSpan);

    private static bool IsValidUtf8(ref Utf8JsonReader reader) =>
        reader.HasValueSequence ? System.Text.Unicode.Utf8.IsValid(reader.ValueSequence.ToArray()) : System.Text.Unicode.Utf8.IsValid(reader.ValueSpan);

    /// <summary>A number with neither fraction nor exponent: one a whole-number field refuses only for its size.</summary>
    private static bool IsWhole(ref Utf8JsonReader reader)
    {
        ReadOnlySpan<byte> raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
        return raw.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;
    }

    private static FieldProblem Wrong(ref Utf8JsonReader reader, FieldSpec spec, string expected)
    {
        var found = reader.TokenType switch
        {
            JsonTokenType.String => $"text '{Snippet(ref reader)}'",
            JsonTokenType.Number => $"number {Snippet(ref reader)}",
            _ => Describe(reader.TokenType),
        };
        return new FieldProblem(spec.Name, $"wrong type: expected {expected}, got {found}");
    }

    private static string Expected(FieldType type) => type switch
    {
        FieldType.String => "text",
        FieldType.Integer => "a whole number",
        FieldType.Double => "a number",
        FieldType.Boolean => "true or false",
        FieldType.Timestamp => "an ISO-8601 timestamp text",
        FieldType.Date => "a YYYY-MM-DD date text",
        _ => type.Name(),
    };

    internal static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "text",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private static string Snippet(ref Utf8JsonReader reader)
    {
        var raw = reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence.ToArray()) : Encoding.UTF8.GetString(reader.ValueSpan);
        return TextClip.Clip(raw, 60);
    }

    internal static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).Trim();
    }
}
