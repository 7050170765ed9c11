using System.Text.Json;
using Sluice.Connectors.Files;

namespace Sluice.Connectors.HttpIngest;

/// <summary>One event's bytes inside a request body, with where it was: 0-based index, and the 1-based line for NDJSON.</summary>
public readonly record struct EventSlice(int Index, int Start, int Length, int? Line);

/// <summary>A body that is not JSON at all: where it broke (1-based line and byte in that line) and why.</summary>
public sealed record BodyError(string Message, long Line, long Byte);

/// <summary>
/// Splits a request body into events without building a document. <c>application/json</c>: one object or an array of
/// them; if the text does not parse the whole request is refused (400, with the position). <c>application/x-ndjson</c>:
/// one event per line; a line that does not parse is that event's own problem, found later by the parser.
/// </summary>
public static class RequestBody
{
    public static BodyError? SplitJson(ReadOnlySpan<byte> body, List<EventSlice> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var offset = body.StartsWith("\uFEFF"u8) ? 3 : 0;
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

    /// <summary>
    /// The fast path for <c>application/json</c>: splits <c>{...}</c> or <c>[{...}, ...]</c> by structure alone (strings,
    /// escapes, nesting), without reading the tokens, since every event is parsed in full afterwards anyway. False when
    /// the body is not shaped like that; the caller then uses <see cref="SplitJson"/>, which also gives the exact error.
    /// A slice it returns may still hold malformed JSON: the event parser finds that, and the caller falls back too.
    /// </summary>
    public static bool TrySplitObjects(ReadOnlySpan<byte> body, List<EventSlice> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var at = SkipWhiteSpace(body, body.StartsWith("\uFEFF"u8) ? 3 : 0);
        if (at >= body.Length)
        {
            return false;
        }

        if (body[at] == (byte)'{')
        {
            var end = ObjectEnd(body, at);
            if (end < 0 || SkipWhiteSpace(body, end) != body.Length) { return false; }
            events.Add(new EventSlice(0, at, end - at, null));
            return true;
        }

        if (body[at] != (byte)'[')
        {
            return false;
        }

        at = SkipWhiteSpace(body, at + 1);
        if (at < body.Length && body[at] == (byte)']')
        {
            return SkipWhiteSpace(body, at + 1) == body.Length;
        }

        var index = 0;
        while (at < body.Length && body[at] == (byte)'{')
        {
            var end = ObjectEnd(body, at);
            if (end < 0) { return false; }
            events.Add(new EventSlice(index++, at, end - at, null));
            at = SkipWhiteSpace(body, end);
            if (at >= body.Length) { return false; }
            if (body[at] == (byte)']') { return SkipWhiteSpace(body, at + 1) == body.Length; }
            if (body[at] != (byte)',') { return false; }
            at = SkipWhiteSpace(body, at + 1);
        }

        return false;
    }

    /// <summary>The position after the brace that closes the object opening at <paramref name="start"/>, or -1.</summary>
    private static int ObjectEnd(ReadOnlySpan<byte> body, int start)
    {
        var depth = 0;
        var at = start;
        while (at < body.Length)
        {
            var next = body[at..].IndexOfAny("\"{}[]"u8);
            if (next < 0) { return -1; }
            at += next;
            switch (body[at])
            {
                case (byte)'"':
                    at++;
                    while (true)
                    {
                        var stop = body[at..].IndexOfAny("\"\\"u8);
                        if (stop < 0) { return -1; }
                        at += stop;
                        if (body[at] == (byte)'"') { break; }
                        at += 2; // a backslash and the byte it escapes
                        if (at >= body.Length) { return -1; }
                    }

                    break;
                case (byte)'{' or (byte)'[':
                    depth++;
                    break;
                default:
                    if (--depth == 0) { return at + 1; }
                    if (depth < 0) { return -1; }
                    break;
            }

            at++;
        }

        return -1;
    }

    private static int SkipWhiteSpace(ReadOnlySpan<byte> body, int at)
    {
        while (at < body.Length && body[at] is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r') { at++; }
        return at;
    }

    public static void SplitNdjson(ReadOnlySpan<byte> body, List<EventSlice> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var at = body.StartsWith("\uFEFF"u8) ? 3 : 0;
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

    private static (long Line, long Column) LineOf(ReadOnlySpan<byte> body, int position)
    {
        var before = body[..Math.Min(position, body.Length)];
        var lines = before.Count((byte)'\n');
        var lastNewline = before.LastIndexOf((byte)'\n');
        return (lines + 1, position - lastNewline);
    }
}
