using System.Text;
using System.Text.Json;
using Sluice.Core.Text;

namespace Sluice.Connectors.Files;

/// <summary>
/// Streams the records of one JSON document: <c>{"root_key": [ {...}, {...} ]}</c> (other root keys are skipped), or a
/// bare array when the type has no root key. Each record is parsed straight from the read buffer; one that is cut by
/// the buffer's end is parsed again after the refill, from the reader state saved before it.
/// </summary>
internal sealed class JsonDocumentReader : ChunkedRecordReader
{
    private enum Phase { Start, RootObject, ExpectArray, Records, SkipValue, Done }

    private static readonly JsonReaderOptions Options = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 256 };

    private readonly List<string> _rootKeys = [];
    private JsonReaderState _state = new(Options);
    private Phase _phase = Phase.Start;
    private Phase _afterSkip;
    private bool _arraySeen;

    protected override int Scan(ReadOnlySpan<byte> data, bool final, IngestRun run)
    {
        var reader = new Utf8JsonReader(data, final, _state);
        try
        {
            while (true)
            {
                var before = reader.CurrentState;
                var beforeConsumed = (int)reader.BytesConsumed;
                if (!reader.Read())
                {
                    _state = reader.CurrentState;
                    return (int)reader.BytesConsumed;
                }

                if (!Step(ref reader, data, run))
                {
                    // The current value continues past the buffer: rewind to just before it and wait for more bytes.
                    _state = before;
                    return beforeConsumed;
                }

                if (run.StopReading)
                {
                    return (int)reader.BytesConsumed;
                }
            }
        }
        catch (JsonException e) when (final && IsEndOfData(e))
        {
            run.Fail((e.LineNumber ?? 0) + 1, run.Records + 1, $"the JSON document is cut off at line {(e.LineNumber ?? 0) + 1}: the file ends before its closing brackets (a complete file whose JSON is cut off is malformed)");
            return data.Length;
        }
        catch (JsonException e)
        {
            run.Fail((e.LineNumber ?? 0) + 1, run.Records + 1, $"malformed JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {JsonRecordParser.FirstSentence(e.Message)}");
            return data.Length;
        }
    }

    // System.Text.Json has no error code for "the data ended inside a value"; these are its two messages for it.
    private static bool IsEndOfData(JsonException e) =>
        e.Message.Contains("reached end of data", StringComparison.Ordinal) || e.Message.Contains("Expected depth to be zero", StringComparison.Ordinal);

    protected override void Complete(IngestRun run)
    {
        if (_phase != Phase.Done && run.Fatal is null)
        {
            run.Fail(run.Records, run.Records, "the JSON document is cut off: it ends before its closing brackets (a complete file whose JSON is cut off is malformed)");
        }
    }

    /// <summary>Handles one token; false when the value it starts is not complete in this buffer.</summary>
    private bool Step(ref Utf8JsonReader reader, ReadOnlySpan<byte> data, IngestRun run)
    {
        var rootKey = run.Type.RootKey;
        switch (_phase)
        {
            case Phase.Start when rootKey is not null:
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    Fail(ref reader, data, run, $"expected a JSON object with the key '{rootKey}' at the top level, found {JsonRecordParser.Describe(reader.TokenType)}");
                    return true;
                }

                _phase = Phase.RootObject;
                return true;
            case Phase.Start:
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    Fail(ref reader, data, run, $"expected a JSON array of records at the top level, found {JsonRecordParser.Describe(reader.TokenType)}");
                    return true;
                }

                _phase = Phase.Records;
                return true;
            case Phase.RootObject:
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    if (!_arraySeen)
                    {
                        var found = _rootKeys.Count == 0 ? "an empty object" : "keys " + string.Join(", ", _rootKeys.Take(10).Select(k => $"'{k}'"));
                        Fail(ref reader, data, run, $"wrong root key: expected '{rootKey}', found {found}");
                        return true;
                    }

                    _phase = Phase.Done;
                    return true;
                }

                // A top-level name that is not Unicode (a lone surrogate escape) is no root key; decoding it would throw.
                var key = JsonValues.HasInvalidEscape(ref reader) ? Encoding.UTF8.GetString(reader.ValueSpan) : reader.GetString()!;
                if (key == rootKey && !_arraySeen)
                {
                    _phase = Phase.ExpectArray;
                }
                else
                {
                    if (_rootKeys.Count < 10) { _rootKeys.Add(key); }
                    _afterSkip = Phase.RootObject;
                    _phase = Phase.SkipValue;
                }

                return true;
            case Phase.SkipValue:
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && !reader.TrySkip())
                {
                    return false;
                }

                _phase = _afterSkip;
                return true;
            case Phase.ExpectArray:
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    Fail(ref reader, data, run, $"'{rootKey}' must be an array of records, found {JsonRecordParser.Describe(reader.TokenType)}");
                    return true;
                }

                _arraySeen = true;
                _phase = Phase.Records;
                return true;
            case Phase.Records:
                return Record(ref reader, data, run, rootKey);
            default:
                Fail(ref reader, data, run, "unexpected data after the end of the JSON document");
                return true;
        }
    }

    private bool Record(ref Utf8JsonReader reader, ReadOnlySpan<byte> data, IngestRun run, string? rootKey)
    {
        if (reader.TokenType == JsonTokenType.EndArray)
        {
            _phase = rootKey is null ? Phase.Done : Phase.RootObject;
            return true;
        }

        var start = (int)reader.TokenStartIndex;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            if (reader.TokenType is JsonTokenType.StartArray && !reader.TrySkip())
            {
                return false;
            }

            var index = run.NextRecord();
            run.Accept(new FieldProblem(null, $"record is not a JSON object (found {JsonRecordParser.Describe(reader.TokenType)})"), index, Lines.LineAt(data, start), data[start..(int)reader.BytesConsumed]);
            return true;
        }

        if (!JsonRecordParser.TryParse(ref reader, run.Shape, run.Builder, out var problem))
        {
            return false;
        }

        var record = run.NextRecord();
        run.Accept(problem, record, problem is null ? 0 : Lines.LineAt(data, start), problem is null ? default : data[start..(int)reader.BytesConsumed]);
        return true;
    }

    private void Fail(ref Utf8JsonReader reader, ReadOnlySpan<byte> data, IngestRun run, string message) =>
        run.Fail(Lines.LineAt(data, (int)reader.TokenStartIndex), run.Records, message);
}
