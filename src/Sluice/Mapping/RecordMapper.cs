using System.Globalization;
using System.Text;
using System.Text.Json;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Mapping;

/// <summary>Why one record could not be mapped: the source field to blame (null for the record as a whole) and what is wrong.</summary>
public readonly record struct MappingIssue(string? Field, string Message)
{
    public override string ToString() => Field is null ? Message : $"field '{Field}': {Message}";
}

/// <summary>
/// A compiled <see cref="RecordMapping"/>: reads one JSON object in a single forward pass (<see cref="Utf8JsonReader"/>,
/// property names matched without regard to case against a tree of the mapped paths, everything else skipped), casts
/// each value to its model type and writes one row. A record with a problem writes nothing. Not thread-safe: one per
/// worker.
/// </summary>
public sealed class RecordMapper
{
    private readonly Slot[] _slots;
    private readonly PathNode _root = new();
    private readonly Found[] _found;

    public RecordMapper(RecordMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        Mapping = mapping;
        var slots = new List<Slot>();
        var candidates = 0;
        foreach (var f in mapping.Fields)
        {
            var column = mapping.Model.IndexOf(f.Target);
            var type = mapping.Model.Fields[column].Type;
            var slot = new Slot(f, column, type, candidates);
            if (f.Value is not null) { slot.Constant = Convert(f.Value, type, f); }
            if (f.Default is not null) { slot.Fallback = Convert(f.Default, type, f); }
            for (var i = 0; i < f.From.Count; i++)
            {
                _root.Add(f.From[i].Split('.'), slots.Count, candidates + i);
            }

            candidates += f.From.Count;
            slots.Add(slot);
        }

        _slots = slots.ToArray();
        _found = new Found[candidates];
    }

    public RecordMapping Mapping { get; }

    public TableSchema Model => Mapping.Model;

    /// <summary>Maps one JSON object into a new row of <paramref name="row"/> (a builder of the model's schema). Returns the problem, or null when the row was written.</summary>
    public MappingIssue? Map(ReadOnlySpan<byte> json, ColumnBatchBuilder row) => Map(json, row, -1, null);

    /// <summary>
    /// Like <see cref="Map(ReadOnlySpan{byte}, ColumnBatchBuilder)"/>, with the text field at model column
    /// <paramref name="fixedColumn"/> set to <paramref name="fixedValue"/> whatever the record says (the tenant a token
    /// vouches for, over a client id the record may lack).
    /// </summary>
    public MappingIssue? Map(ReadOnlySpan<byte> json, ColumnBatchBuilder row, int fixedColumn, string? fixedValue)
    {
        ArgumentNullException.ThrowIfNull(row);
        Array.Clear(_found);
        var issue = Read(json);
        if (issue is null)
        {
            issue = Write(row, fixedColumn, fixedValue);
        }

        if (issue is null)
        {
            row.CommitRow();
        }
        else
        {
            row.AbortRow();
        }

        return issue;
    }

    private MappingIssue? Read(ReadOnlySpan<byte> json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            // The reader does not check the bytes of strings: decoding them would replace them and map other text.
            return new MappingIssue(null, JsonValues.InvalidUtf8);
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
        try
        {
            if (!reader.Read())
            {
                return new MappingIssue(null, "empty record");
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return new MappingIssue(null, $"record is not a JSON object (found {Describe(reader.TokenType)})");
            }

            Walk(ref reader, _root);
            if (reader.Read())
            {
                return new MappingIssue(null, "unexpected data after the record's closing '}'");
            }

            return null;
        }
        catch (JsonException e)
        {
            return new MappingIssue(null, $"not valid JSON at byte {e.BytePositionInLine + 1}: {FirstSentence(e.Message)}");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or OverflowException)
        {
            // Every conversion is checked before it is made; this is the net under them: a value nobody thought of is
            // this record's problem (a dead letter), never a failure of the batch or the pipeline.
            return new MappingIssue(null, $"unreadable value: {FirstSentence(e.Message)}");
        }
    }

    /// <summary>Reads the members of the object whose start the reader is on, descending only into mapped paths.</summary>
    private void Walk(ref Utf8JsonReader reader, PathNode node)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var child = node.Find(ref reader);
            reader.Read();
            if (child is null)
            {
                reader.Skip();
                continue;
            }

            if (reader.TokenType == JsonTokenType.StartObject && child.HasChildren)
            {
                Walk(ref reader, child);
                continue;
            }

            foreach (var (slot, candidate) in child.Leaves)
            {
                if (_found[candidate].Kind == FoundKind.None)
                {
                    _found[candidate] = Read(ref reader, _slots[slot]);
                }
            }

            reader.Skip();
        }
    }

    private MappingIssue? Write(ColumnBatchBuilder row, int fixedColumn, string? fixedValue)
    {
        foreach (var slot in _slots)
        {
            if (slot.Column == fixedColumn && fixedValue is not null && slot.Type == FieldType.String)
            {
                ((TypedColumnBuilder<string>)row[slot.Column]).Set(fixedValue);
                continue;
            }

            var value = default(Found);
            var path = slot.Field.Target;
            for (var i = 0; i < slot.Field.From.Count; i++)
            {
                if (_found[slot.FirstCandidate + i].Kind != FoundKind.None)
                {
                    value = _found[slot.FirstCandidate + i];
                    path = slot.Field.From[i];
                    break;
                }
            }

            if (slot.Constant is { } constant)
            {
                value = constant;
            }
            else if (value.Kind == FoundKind.None && slot.Fallback is { } fallback)
            {
                value = fallback;
            }

            switch (value.Kind)
            {
                case FoundKind.Problem:
                    return new MappingIssue(path, value.Text!);
                case FoundKind.None:
                    if (slot.Field.Required)
                    {
                        var from = slot.Field.From.Count == 0 ? slot.Field.Target : string.Join("' or '", slot.Field.From);
                        return new MappingIssue(slot.Field.From.Count == 1 ? slot.Field.From[0] : slot.Field.Target, $"missing required field '{from}'");
                    }

                    continue;
            }

            var column = row[slot.Column];
            switch (slot.Type)
            {
                case FieldType.String: ((TypedColumnBuilder<string>)column).Set(slot.Field.Lower ? value.Text!.ToLowerInvariant() : value.Text); break;
                case FieldType.Double: ((ValueColumnBuilder<double>)column).Set(value.Number); break;
                case FieldType.Integer: ((ValueColumnBuilder<long>)column).Set(value.Integer); break;
                case FieldType.Boolean: ((ValueColumnBuilder<bool>)column).Set(value.Integer != 0); break;
                case FieldType.Timestamp: ((ValueColumnBuilder<DateTime>)column).Set(value.Time); break;
                case FieldType.Date: ((ValueColumnBuilder<DateOnly>)column).Set(DateOnly.FromDateTime(value.Time)); break;
            }
        }

        return null;
    }

    /// <summary>Reads the value the reader is on and casts it to the slot's type. Text that is empty or only spaces is a missing value.</summary>
    private static Found Read(ref Utf8JsonReader reader, Slot slot)
    {
        var token = reader.TokenType;
        if (token == JsonTokenType.Null)
        {
            return default;
        }

        if (token is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            return Found.Problem($"expected a {slot.Type.Name()} value, got {Describe(token)}");
        }

        if (token == JsonTokenType.String && JsonValues.HasInvalidEscape(ref reader))
        {
            // Decoding it would throw: checked once here for every type the text could be cast to.
            return Found.Problem(JsonValues.LoneSurrogate);
        }

        switch (slot.Type)
        {
            case FieldType.String:
                var text = token switch
                {
                    JsonTokenType.String => reader.GetString()!.Trim(),
                    JsonTokenType.Number => Encoding.UTF8.GetString(reader.ValueSpan),
                    JsonTokenType.True => "true",
                    _ => "false",
                };
                return text.Length == 0 ? default : Found.Of(text);

            case FieldType.Double:
                if (token == JsonTokenType.Number && JsonValues.TryGetFiniteDouble(ref reader, out var d)) { return Found.Of(d); }
                if (token == JsonTokenType.Number) { return Found.Problem(JsonValues.OutOfDoubleRange(Clip(Encoding.UTF8.GetString(reader.ValueSpan)))); }
                if (token == JsonTokenType.String)
                {
                    var s = reader.GetString()!.Trim();
                    if (s.Length == 0) { return default; }
                    if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                    {
                        // Text parses to infinity when out of range, and "NaN" and "Infinity" parse too: none is a value to store.
                        return double.IsFinite(d) ? Found.Of(d) : Found.Problem(JsonValues.OutOfDoubleRange($"'{Clip(s)}'"));
                    }

                    return Found.Problem($"expected a number, got the text '{Clip(s)}'");
                }

                return Found.Problem($"expected a number, got {Describe(token)}");

            case FieldType.Integer:
                if (token == JsonTokenType.Number && reader.TryGetInt64(out var l)) { return Found.OfInteger(l); }
                if (token == JsonTokenType.String)
                {
                    var s = reader.GetString()!.Trim();
                    if (s.Length == 0) { return default; }
                    if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out l)) { return Found.OfInteger(l); }
                    return Found.Problem($"expected a whole number, got the text '{Clip(s)}'");
                }

                if (token == JsonTokenType.Number)
                {
                    var number = Clip(Encoding.UTF8.GetString(reader.ValueSpan));
                    return Found.Problem(reader.ValueSpan.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0 ? JsonValues.OutOfIntegerRange(number) : $"expected a whole number, got {number}");
                }

                return Found.Problem($"expected a whole number, got {Describe(token)}");

            case FieldType.Boolean:
                if (token is JsonTokenType.True or JsonTokenType.False) { return Found.OfInteger(token == JsonTokenType.True ? 1 : 0); }
                if (token == JsonTokenType.String)
                {
                    var s = reader.GetString()!.Trim();
                    if (s.Length == 0) { return default; }
                    if (bool.TryParse(s, out var b)) { return Found.OfInteger(b ? 1 : 0); }
                    return Found.Problem($"expected true or false, got the text '{Clip(s)}'");
                }

                return Found.Problem($"expected true or false, got {Describe(token)}");

            case FieldType.Timestamp:
            case FieldType.Date:
                if (token == JsonTokenType.String)
                {
                    var ok = reader.ValueIsEscaped
                        ? Timestamps.TryParseUtc(reader.GetString().AsSpan(), out var t)
                        : Timestamps.TryParseUtc(reader.ValueSpan, out t);
                    if (ok) { return Found.Of(t); }
                    var s = reader.GetString()!.Trim();
                    if (s.Length == 0) { return default; }
                    if (slot.Type == FieldType.Date && Timestamps.TryParseDate(s, out var day)) { return Found.Of(day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc)); }
                    return Found.Problem($"expected an ISO-8601 timestamp such as 2025-07-21T10:34:00Z, got '{Clip(s)}'");
                }

                if (token == JsonTokenType.Number && slot.Field.Numbers != NumericTime.None && reader.TryGetInt64(out var epoch))
                {
                    try
                    {
                        var instant = slot.Field.Numbers == NumericTime.EpochSeconds ? DateTimeOffset.FromUnixTimeSeconds(epoch) : DateTimeOffset.FromUnixTimeMilliseconds(epoch);
                        return Found.Of(instant.UtcDateTime);
                    }
                    catch (ArgumentOutOfRangeException)
                    {
                        return Found.Problem($"{epoch} is out of range for a timestamp");
                    }
                }

                return Found.Problem(token == JsonTokenType.Number
                    ? $"expected an ISO-8601 timestamp, got the number {Encoding.UTF8.GetString(reader.ValueSpan)} (set numbers: epoch_seconds or epoch_millis to accept numbers)"
                    : $"expected an ISO-8601 timestamp, got {Describe(token)}");
        }

        return default;
    }

    /// <summary>A constant or default from the mapping file, already checked at load to fit the type.</summary>
    private static Found Convert(string text, FieldType type, FieldMapping field) => type switch
    {
        FieldType.String => Found.Of(field.Lower ? text.ToLowerInvariant() : text),
        FieldType.Double => Found.Of(double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)),
        FieldType.Integer => Found.OfInteger(long.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture)),
        FieldType.Boolean => Found.OfInteger(bool.Parse(text) ? 1 : 0),
        FieldType.Timestamp => Found.Of(Timestamps.TryParseUtc(text.AsSpan(), out var t) ? t : default),
        FieldType.Date => Found.Of(Timestamps.TryParseDate(text.AsSpan(), out var d) ? d.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) : default),
        _ => default,
    };

    private static string Clip(string text) => TextClip.Clip(text, 43);

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a text value",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private static string FirstSentence(string message)
    {
        var dot = message.IndexOf(". ", StringComparison.Ordinal);
        return dot > 0 ? message[..dot] : message.TrimEnd('.');
    }

    private enum FoundKind : byte
    {
        None,
        Value,
        Problem,
    }

    private readonly record struct Found(FoundKind Kind, string? Text, double Number, long Integer, DateTime Time)
    {
        public static Found Of(string text) => new(FoundKind.Value, text, 0, 0, default);

        public static Found Of(double number) => new(FoundKind.Value, null, number, 0, default);

        public static Found OfInteger(long number) => new(FoundKind.Value, null, 0, number, default);

        public static Found Of(DateTime time) => new(FoundKind.Value, null, 0, 0, time);

        public static Found Problem(string message) => new(FoundKind.Problem, message, 0, 0, default);
    }

    private sealed class Slot(FieldMapping field, int column, FieldType type, int firstCandidate)
    {
        public FieldMapping Field { get; } = field;

        public int Column { get; } = column;

        public FieldType Type { get; } = type;

        public int FirstCandidate { get; } = firstCandidate;

        public Found? Constant { get; set; }

        public Found? Fallback { get; set; }
    }

    /// <summary>One level of the mapped paths. Names compare without regard to case: ASCII fast, anything else through strings.</summary>
    private sealed class PathNode
    {
        private readonly List<(byte[] Utf8, string Name, PathNode Node)> _children = [];

        public List<(int Slot, int Candidate)> Leaves { get; } = [];

        public bool HasChildren => _children.Count > 0;

        public void Add(string[] path, int slot, int candidate)
        {
            var node = this;
            foreach (var segment in path)
            {
                var next = node._children.FirstOrDefault(c => string.Equals(c.Name, segment, StringComparison.OrdinalIgnoreCase)).Node;
                if (next is null)
                {
                    next = new PathNode();
                    node._children.Add((Encoding.UTF8.GetBytes(segment), segment, next));
                }

                node = next;
            }

            node.Leaves.Add((slot, candidate));
        }

        public PathNode? Find(ref Utf8JsonReader reader)
        {
            if (!reader.ValueIsEscaped)
            {
                var name = reader.ValueSpan;
                var ascii = true;
                foreach (var c in _children)
                {
                    if (System.Text.Ascii.EqualsIgnoreCase(name, c.Utf8)) { return c.Node; }
                }

                foreach (var b in name)
                {
                    if (b >= 0x80) { ascii = false; break; }
                }

                if (ascii) { return null; }
            }

            if (JsonValues.HasInvalidEscape(ref reader))
            {
                // Not Unicode, so no mapped path: its value is skipped like any unmapped one.
                return null;
            }

            var text = reader.GetString();
            foreach (var c in _children)
            {
                if (string.Equals(text, c.Name, StringComparison.OrdinalIgnoreCase)) { return c.Node; }
            }

            return null;
        }
    }
}
