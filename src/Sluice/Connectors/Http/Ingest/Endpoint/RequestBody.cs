using System.Text.Json;
using Sluice.Connectors.Files;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>One event's bytes inside a request body, with where it was: 0-based index, and the 1-based line for NDJSON.</summary>
public readonly record struct EventSlice(int Index, int Start, int Length, int? Line);

/// <summary>A body that is not JSON at all: where it broke (1-based line and byte in that line) and why.</summary>
public sealed record BodyError(string Message, long Line, long Byte);

/// <summary>
/// Splits a request body into events without building a document. <c>application/json</c>: one object or an array of
/// them; if the text does not parse the whole request is refused (400, with the position). <c>application/x-ndjson</c>:
/// one event per line; a line that does not parse is that event's own problem, found later by the parser. Ingest reads
/// a JSON body in one pass instead (<see cref="RequestEvents.TryReadJson"/>) and splits it here only when that fails.
/// </summary>
public static class RequestBody
{
    public static BodyError? SplitJson(ReadOnlySpan<byte> body, List<EventSlice> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var offset = ContentStart(body);
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            var bad = EventParser.FirstInvalidUtf8(body);
            var (line, column) = LineOf(body, bad);
            return new BodyError($"the body is not valid UTF-8 (first bad byte at offset {bad})", line, column);
        }

        // Multiple values allowed only so that a second one is found and explained (send an array or NDJSON), not refused cryptically.
        var reader = new Utf8JsonReader(body[offset..], new JsonReaderOptions { MaxDepth = 64, AllowMultipleValues = true });
        try
        {
            if (!reader.Read())
            {
                return new BodyError("the body is empty: send a JSON object or an array of objects", 1, 1);
            }

            if (reader.TokenType == JsonTokenType.StartArray)
            {
                var index = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    events.Add(new EventSlice(index++, offset + start, (int)reader.BytesConsumed - start, null));
                }
            }
            else
            {
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                events.Add(new EventSlice(0, offset + start, (int)reader.BytesConsumed - start, null));
            }

            if (reader.Read())
            {
                var (line, column) = LineOf(body, offset + (int)reader.TokenStartIndex);
                return new BodyError($"unexpected {JsonRecordParser.Describe(reader.TokenType)} after the end of the JSON value (for several events send an array, or NDJSON with Content-Type application/x-ndjson)", line, column);
            }

            return null;
        }
        catch (JsonException e)
        {
            return new BodyError($"malformed JSON: {JsonRecordParser.FirstSentence(e.Message)}", (e.LineNumber ?? 0) + 1, (e.BytePositionInLine ?? 0) + 1);
        }
    }

    public static void SplitNdjson(ReadOnlySpan<byte> body, List<EventSlice> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var at = ContentStart(body);
        var line = 0;
        var index = 0;
        while (at < body.Length)
        {
            var rest = body[at..];
            var newline = rest.IndexOf((byte)'\n');
            var length = newline < 0 ? rest.Length : newline;
            line++;
            var content = length;
            if (content > 0 && rest[content - 1] == (byte)'\r') { content--; }
            if (!rest[..content].Trim(" \t"u8).IsEmpty)
            {
                events.Add(new EventSlice(index++, at, content, line));
            }

            at += newline < 0 ? rest.Length : newline + 1;
        }
    }

    /// <summary>Where the content starts: after a UTF-8 byte order mark, if the body has one.</summary>
    public static int ContentStart(ReadOnlySpan<byte> body) => body.StartsWith("\uFEFF"u8) ? 3 : 0;

    private static (long Line, long Column) LineOf(ReadOnlySpan<byte> body, int position)
    {
        var before = body[..Math.Min(position, body.Length)];
        var lines = before.Count((byte)'\n');
        var lastNewline = before.LastIndexOf((byte)'\n');
        return (lines + 1, position - lastNewline);
    }
}
