using System.Globalization;
using System.Text;
using System.Text.Json;
using Sluice.Connectors.Files;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>Why one event was rejected: the field to blame (dotted path, <c>items[2].qty</c>) when there is one.</summary>
public readonly record struct EventProblem(string? Field, string Message);

/// <summary>What ingest needs from a valid event: its version, the tenant it names (if any) and its dedup key's hash (<see cref="DedupIndex.Hash(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> with the expected tenant; 0 without a key).</summary>
public readonly record struct ParsedEvent(int Version, string? Tenant, ulong KeyHash);

/// <summary>
/// Parses one event (a complete JSON object) against its stream's schemas in a single pass, without building a
/// document: types, enumerations, required fields (also conditional ones), the version, and child arrays. Used twice
/// with the same rules: at ingest to validate before the 2xx (<see cref="Validate"/> inside a JSON body's reader, or
/// <c>keep: false</c> for an NDJSON line), and by the pipeline to turn landed events into rows of the flattened tables
/// (<c>keep: true</c>, PII hashed). Not thread-safe: one per reader.
/// </summary>
public sealed class EventParser
{
    private readonly StreamShape _shape;
    private readonly PiiHasher? _pii;
    /// <summary>
    /// The child rows of the event being read: which of their first 64 columns are present (wider tables also keep a
    /// flag per column). Kept rows are already in their table, from <see cref="_childMarks"/> on.
    /// </summary>
    private readonly List<(int Child, int Index, ulong Present, bool[]? Wide)> _childRows = [];
    private readonly int[] _childMarks;
    private readonly bool[] _childSeen;
    private readonly Utf8StringCache?[] _strings;
    private readonly int[] _mainPii;
    private readonly int[][] _childPii;
    private const string Present = "";

    private string? _tenant;
    private string _expectedTenant = "";
    private string? _tenantOfBytes;
    private byte[] _tenantBytes = [];
    private long? _version;
    private bool _keep;
    private EventProblem? _problem;

    public EventParser(StreamShape shape, PiiHasher? pii, int capacity = 1024)
    {
        ArgumentNullException.ThrowIfNull(shape);
        _shape = shape;
        _pii = pii;
        Main = new ColumnBatchBuilder(shape.Main, capacity, i => shape.Utf8[i]);
        Children = shape.Children.Select(c => new ColumnBatchBuilder(c.Schema, capacity, i => c.Utf8[i])).ToArray();
        _childSeen = new bool[shape.Children.Count];
        _strings = new Utf8StringCache?[shape.StringFields];
        _childMarks = new int[shape.Children.Count];
        _mainPii = shape.Fields.Select((f, i) => (f, i)).Where(p => p.f.Pii).Select(p => shape.FieldBase + p.i).ToArray();
        _childPii = shape.Children.Select(c => c.Fields.Select((f, i) => (f, i)).Where(p => p.f.Pii).Select(p => c.FieldBase + p.i).ToArray()).ToArray();
    }

    public ColumnBatchBuilder Main { get; }

    /// <summary>The tenant the last parsed event named, even when it was invalid (null when it named none).</summary>
    public string? LastTenant => _tenant;

    public IReadOnlyList<ColumnBatchBuilder> Children { get; }

    /// <summary>The rows built so far, one batch per table, and a fresh start.</summary>
    public IReadOnlyList<ColumnBatch> Flush() => new[] { Main.Flush() }.Concat(Children.Select(c => c.Flush())).ToList();

    public EventProblem? Parse(ReadOnlySpan<byte> json, string tenant, DateTime receivedAt, long offset, bool keep, out ParsedEvent parsed)
    {
        var problem = ParsePending(json, tenant, keep, out parsed);
        if (problem is null && keep)
        {
            CommitPending(json, tenant, receivedAt, offset, parsed.Version);
        }

        return problem;
    }

    /// <summary>
    /// <see cref="Parse"/> without the last step: a valid event's row stays pending (<c>keep: true</c>) until
    /// <see cref="CommitPending"/> or <see cref="AbortPending"/>, so the caller can still refuse it (too large, another
    /// tenant) after reading it.
    /// </summary>
    public EventProblem? ParsePending(ReadOnlySpan<byte> json, string tenant, bool keep, out ParsedEvent parsed)
    {
        parsed = default;
        Start(tenant, keep);
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            return new EventProblem(null, $"not valid UTF-8 (first bad byte at {FirstInvalidUtf8(json) + 1})");
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        try
        {
            if (!reader.Read())
            {
                return new EventProblem(null, "empty event");
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return new EventProblem(null, $"an event is a JSON object, found {JsonRecordParser.Describe(reader.TokenType)}");
            }

            ReadObject(ref reader, _shape.Root, null, default);
            if (_problem is null && reader.Read())
            {
                Fail(null, "unexpected data after the event's closing '}'");
            }
        }
        catch (JsonException e)
        {
            Fail(null, $"malformed JSON at byte {e.BytePositionInLine + 1}: {JsonRecordParser.FirstSentence(e.Message)}");
        }
        catch (Exception e) when (IsValueError(e))
        {
            // Every conversion is checked before it is made; this is the net under them, so that a value nobody
            // thought of is still this event's problem and never the request's (or the pipeline's, reading it back).
            Fail(null, $"unreadable value: {JsonRecordParser.FirstSentence(e.Message)}");
        }

        var problem = _problem ?? Check(out parsed);
        if (problem is not null || !keep)
        {
            AbortEvent();
        }

        return problem;
    }

    /// <summary>
    /// Validates and flattens the event whose <c>{</c> the reader is on (inside a whole request body), leaving the reader
    /// on its <c>}</c> and a valid event's row pending: ingest parses each event once, and the pipeline takes the rows
    /// (<see cref="IngestHandoff"/>) instead of parsing the landed event again.
    /// </summary>
    public EventProblem? ReadPending(ref Utf8JsonReader reader, string tenant, out ParsedEvent parsed)
    {
        parsed = default;
        Start(tenant, keep: true);
        try
        {
            ReadObject(ref reader, _shape.Root, null, default);
            var problem = _problem ?? Check(out parsed);
            if (problem is not null) { AbortEvent(); }
            return problem;
        }
        catch
        {
            AbortEvent();
            throw;
        }
    }

    /// <summary>Keeps the pending row of the event just read (PII hashed), as the rows of <paramref name="json"/> at <paramref name="offset"/>.</summary>
    public void CommitPending(ReadOnlySpan<byte> json, string tenant, DateTime receivedAt, long offset, int version)
    {
        if (_shape.JsonIndex >= 0) { ((Utf8ColumnBuilder)Main[_shape.JsonIndex]).Set(json); }
        Commit(tenant, receivedAt, offset, version);
    }

    /// <summary>Forgets the pending row of the event just read.</summary>
    public void AbortPending() => AbortEvent();

    /// <summary>Forgets every row built so far (a request refused whole).</summary>
    public void Discard()
    {
        Main.AbortRow();
        Main.Clear();
        foreach (var child in Children) { child.AbortRow(); child.Clear(); }
    }

    /// <summary>Forgets the event being read: its pending row and the child rows already kept for it.</summary>
    private void AbortEvent()
    {
        Main.AbortRow();
        for (var c = 0; c < Children.Count; c++) { Children[c].Truncate(_childMarks[c]); }
    }

    /// <summary>
    /// Validates the event whose <c>{</c> the reader is on (inside a whole request body, UTF-8 already checked) and
    /// leaves the reader on its <c>}</c>. JSON that does not parse throws: that is the body's problem, not the event's.
    /// </summary>
    public EventProblem? Validate(ref Utf8JsonReader reader, string tenant, out ParsedEvent parsed)
    {
        parsed = default;
        Start(tenant, keep: false);
        try
        {
            ReadObject(ref reader, _shape.Root, null, default);
            return _problem ?? Check(out parsed);
        }
        finally
        {
            // Also when the reader throws halfway: nothing of this event may stay for the next one.
            AbortEvent();
        }
    }

    private void Start(string tenant, bool keep)
    {
        _expectedTenant = tenant;
        _keep = keep;
        _problem = null;
        _tenant = null;
        _version = null;
        _childRows.Clear();
        Array.Clear(_childSeen);
        for (var c = 0; c < Children.Count; c++) { _childMarks[c] = Children[c].Count; }
    }

    private EventProblem? Check(out ParsedEvent parsed)
    {
        parsed = default;
        var versionField = _shape.Options.VersionField;
        int version;
        if (_version is null)
        {
            if (_shape.Versions.Count != 1)
            {
                return new EventProblem(versionField, $"missing required field (accepted versions: {Accepted()})");
            }

            version = _shape.Versions.Keys.First();
        }
        else if (_version is < int.MinValue or > int.MaxValue || !_shape.Versions.ContainsKey((int)_version.Value))
        {
            return new EventProblem(versionField, $"unknown schema version {_version} (accepted: {Accepted()})");
        }
        else
        {
            version = (int)_version.Value;
        }

        var shape = _shape.Versions[version];
        for (var i = _shape.FieldBase; i < shape.Known.Length; i++)
        {
            // A field another version declares is not part of this one: it is ignored, as unknown properties are.
            if (!shape.Known[i] && i != _shape.ReceivedAtIndex && i != _shape.OffsetIndex && Main[i].IsSet) { Main[i].Reset(); }
        }

        foreach (var (index, path) in shape.Required)
        {
            if (!Main[index].IsSet) { return new EventProblem(path, "missing required field"); }
        }

        foreach (var (index, path, when, values, condition) in shape.Conditions)
        {
            if (!Main[index].IsSet && ((TypedColumnBuilder<string>)Main[when]).Pending is { } value && values.Contains(value))
            {
                return new EventProblem(path, $"missing: required when {condition}");
            }
        }

        foreach (var child in shape.ChildRequired)
        {
            if (!_childSeen[child]) { return new EventProblem(_shape.Children[child].Path, "missing required array"); }
        }

        foreach (var (child, index, present, wide) in _childRows)
        {
            foreach (var (column, path) in shape.ChildFieldRequired[child])
            {
                var missing = column < 64 ? (present & (1UL << column)) == 0 : !wide![column];
                if (missing) { return new EventProblem($"{_shape.Children[child].Path}[{index}].{path}", "missing required field"); }
            }
        }

        parsed = new ParsedEvent(version, _tenant, KeyHash());
        return null;
    }

    /// <summary>The pending event's dedup key hashed with the expected tenant, 0 when it has none.</summary>
    private ulong KeyHash()
    {
        if (_shape.DedupIndex < 0 || !Main[_shape.DedupIndex].IsSet) { return 0; }
        if (!ReferenceEquals(_tenantOfBytes, _expectedTenant))
        {
            _tenantBytes = Encoding.UTF8.GetBytes(_expectedTenant);
            _tenantOfBytes = _expectedTenant;
        }

        return Main[_shape.DedupIndex] is Utf8ColumnBuilder utf8
            ? DedupIndex.Hash(_tenantBytes, utf8.Pending)
            : DedupIndex.Hash(_tenantBytes, Encoding.UTF8.GetBytes(((TypedColumnBuilder<string>)Main[_shape.DedupIndex]).Pending!));
    }

    private void Commit(string tenant, DateTime receivedAt, long offset, int version)
    {
        var shape = _shape.Versions[version];
        ((TypedColumnBuilder<string>)Main[_shape.TenantIndex]).Set(tenant);
        ((ValueColumnBuilder<long>)Main[_shape.VersionIndex]).Set(version);
        ((ValueColumnBuilder<DateTime>)Main[_shape.ReceivedAtIndex]).Set(receivedAt);
        ((ValueColumnBuilder<long>)Main[_shape.OffsetIndex]).Set(offset);
        foreach (var i in _mainPii)
        {
            if (_pii is null || !Main[i].IsSet) { continue; }
            if (Main[i] is Utf8ColumnBuilder utf8) { utf8.Set(_pii.Hash(utf8.Pending)); }
            else { var column = (TypedColumnBuilder<string>)Main[i]; column.Set(_pii.Hash(column.Pending!)); }
        }

        var time = ((ValueColumnBuilder<DateTime>)Main[_shape.TimeIndex]).Pending;
        for (var c = 0; c < Children.Count; c++)
        {
            var builder = Children[c];
            var mark = _childMarks[c];
            if (builder.Count == mark) { continue; }
            if (!shape.ChildKnown[c]) { builder.Truncate(mark); continue; }
            FillChildRows(c, mark, builder, shape, tenant, time, offset);
        }

        Main.CommitRow();
    }

    /// <summary>
    /// Completes the child rows kept for the event being committed, from <paramref name="mark"/> on: what comes from the
    /// parent (tenant, key, time, offset), fields this version does not declare dropped, PII hashed.
    /// </summary>
    private void FillChildRows(int child, int mark, ColumnBatchBuilder builder, StreamShape.VersionShape shape, string tenant, DateTime time, long offset)
    {
        var childShape = _shape.Children[child];
        var rows = builder.Count;
        var tenants = (TypedColumnBuilder<string>)builder[0];
        var times = (ValueColumnBuilder<DateTime>)builder[childShape.TimeColumn];
        var offsets = (ValueColumnBuilder<long>)builder[childShape.Schema.Fields.Count - 1];
        for (var row = mark; row < rows; row++)
        {
            tenants.SetAt(row, tenant);
            times.SetAt(row, time);
            offsets.SetAt(row, offset);
        }

        if (_shape.DedupIndex >= 0 && Main[_shape.DedupIndex].IsSet)
        {
            if (builder[StreamShape.ChildKeyIndex] is Utf8ColumnBuilder keys) { keys.FillTail(mark, rows, ((Utf8ColumnBuilder)Main[_shape.DedupIndex]).Pending); }
            else
            {
                var key = ((TypedColumnBuilder<string>)Main[_shape.DedupIndex]).Pending;
                for (var row = mark; row < rows; row++) { ((TypedColumnBuilder<string>)builder[StreamShape.ChildKeyIndex]).SetAt(row, key); }
            }
        }

        var known = shape.ChildFieldKnown[child];
        for (var i = childShape.FieldBase; i < known.Length - 1; i++)
        {
            if (known[i]) { continue; }
            for (var row = mark; row < rows; row++) { builder[i].ClearAt(row); }
        }

        foreach (var i in _childPii[child])
        {
            if (_pii is null || !known[i]) { continue; }
            var column = (TypedColumnBuilder<string>)builder[i];
            for (var row = mark; row < rows; row++)
            {
                if (column.ValueAt(row) is { } raw) { column.SetAt(row, _pii.Hash(raw)); }
            }
        }
    }

    private void ReadObject(ref Utf8JsonReader reader, Node node, ColumnBatchBuilder? child, FieldPrefix prefix, string? path = null)
    {
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return;
            }

            if (JsonValues.HasInvalidEscape(ref reader))
            {
                // A name that is not Unicode is no field of the schema; it is refused rather than ignored, as its value might be.
                Fail(prefix.Of(path is null ? Snippet(ref reader) : $"{path}.{Snippet(ref reader)}"), $"property name: {JsonValues.LoneSurrogate}");
                reader.Read();
                reader.Skip();
                continue;
            }

            var entry = reader.ValueIsEscaped ? node.Find(Encoding.UTF8.GetBytes(reader.GetString()!)) : node.Find(reader.ValueSpan);
            reader.Read();
            if (entry is not null && reader.TokenType == JsonTokenType.String && JsonValues.HasInvalidEscape(ref reader))
            {
                // Checked here once for every kind of text (fields, the tenant, timestamps): decoding it would throw.
                Fail(entry.Kind == NodeKind.Tenant ? entry.Path : prefix.Of(entry.Path), JsonValues.LoneSurrogate);
                continue;
            }

            // After a problem the rest is skipped, except the tenant: a request naming another tenant is refused whole.
            if (entry is null || reader.TokenType == JsonTokenType.Null || (_problem is not null && entry.Kind != NodeKind.Tenant))
            {
                reader.Skip();
                continue;
            }

            switch (entry.Kind)
            {
                case NodeKind.Object when reader.TokenType == JsonTokenType.StartObject:
                    ReadObject(ref reader, entry.Children!, child, prefix, entry.Path);
                    break;
                case NodeKind.Object:
                    Fail(prefix.Of(entry.Path), $"wrong type: expected an object, got {Found(ref reader)}");
                    reader.Skip();
                    break;
                case NodeKind.Field:
                    SetValue(ref reader, entry, child, prefix);
                    reader.Skip();
                    break;
                case NodeKind.Version when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var version):
                    _version = version;
                    break;
                case NodeKind.Tenant when reader.TokenType == JsonTokenType.String:
                    // Nearly every event names the token's own tenant: that needs no string of its own.
                    _tenant = reader.ValueTextEquals(_expectedTenant) ? _expectedTenant : reader.GetString();
                    break;
                case NodeKind.Tenant when _problem is not null:
                    reader.Skip();
                    break;
                case NodeKind.Child when reader.TokenType == JsonTokenType.StartArray:
                    ReadArray(ref reader, entry.Index);
                    break;
                case NodeKind.Child:
                    Fail(prefix.Of(entry.Path), $"wrong type: expected an array of objects, got {Found(ref reader)}");
                    reader.Skip();
                    break;
                default:
                    Fail(entry.Path, $"wrong type: expected {(entry.Kind == NodeKind.Version ? "a whole number" : "text")}, got {Found(ref reader)}");
                    reader.Skip();
                    break;
            }
        }
    }

    private void ReadArray(ref Utf8JsonReader reader, int child)
    {
        _childSeen[child] = true;
        var shape = _shape.Children[child];
        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (_problem is not null)
            {
                reader.Skip();
                continue;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                Fail($"{shape.Path}[{index}]", $"wrong type: expected an object, got {Found(ref reader)}");
                reader.Skip();
                index++;
                continue;
            }

            // The row is read straight into its table and kept (validating only, dropped): the event's commit fills in
            // what comes from the parent, its abort takes the rows back.
            var builder = Children[child];
            ((ValueColumnBuilder<long>)builder[shape.IndexColumn]).Set(index);
            ReadObject(ref reader, shape.Root, builder, new FieldPrefix(shape.Path, index));
            var count = shape.Schema.Fields.Count;
            var present = 0UL;
            for (var i = 0; i < Math.Min(count, 64); i++)
            {
                if (builder[i].IsSet) { present |= 1UL << i; }
            }

            bool[]? wide = null;
            if (count > 64)
            {
                wide = new bool[count];
                for (var i = 0; i < count; i++) { wide[i] = builder[i].IsSet; }
            }

            if (_keep && _problem is null) { builder.CommitRow(); } else { builder.AbortRow(); }
            _childRows.Add((child, index, present, wide));
            index++;
        }
    }

    /// <summary>Sets the value the reader is on as the pending value of its column, in the main table or the child row being read.</summary>
    private void SetValue(ref Utf8JsonReader reader, Node.Entry entry, ColumnBatchBuilder? child, FieldPrefix prefix)
    {
        var spec = entry.Field!;
        var token = reader.TokenType;
        var i = entry.Index;
        var row = child ?? Main;
        switch (spec.Type)
        {
            case FieldType.String when token == JsonTokenType.String:
                if (entry.Utf8Values is not null && !reader.ValueIsEscaped && !reader.HasValueSequence)
                {
                    // Enumerations are matched on the raw bytes and stored as the shared value: no string per event.
                    var match = MatchValue(reader.ValueSpan, entry.Utf8Values);
                    if (match < 0)
                    {
                        Fail(prefix.Of(spec.Path), $"'{Snip(reader.GetString()!)}' is not one of {string.Join(", ", spec.Values!)}");
                        return;
                    }

                    ((TypedColumnBuilder<string>)row[i]).Set(spec.Values![match]);
                    return;
                }

                if (entry.Utf8)
                {
                    SetUtf8(ref reader, entry, (Utf8ColumnBuilder)row[i]);
                    return;
                }

                // Validating only, a text nobody reads later needs no string of its own: its presence is what counts
                // (an enumeration still needs it: an escaped value reaches this check as text).
                var text = _keep || entry.Needed || entry.Values is not null ? Text(ref reader, entry) : Present;
                if (entry.Values is not null && !entry.Values.Contains(text))
                {
                    Fail(prefix.Of(spec.Path), $"'{Snip(text)}' is not one of {string.Join(", ", spec.Values!)}");
                    return;
                }

                ((TypedColumnBuilder<string>)row[i]).Set(text);
                return;
            case FieldType.Integer when token == JsonTokenType.Number:
                if (!reader.TryGetInt64(out var l))
                {
                    var number = Snippet(ref reader);
                    Fail(prefix.Of(spec.Path), IsWhole(reader.ValueSpan) ? JsonValues.OutOfIntegerRange(number) : $"wrong type: expected a whole number, got number {number}");
                    return;
                }

                ((ValueColumnBuilder<long>)row[i]).Set(l);
                return;
            case FieldType.Double when token == JsonTokenType.Number:
                // A JSON number out of a double's range reads as infinity, which no reader of the lake can serve: refused.
                // Validating only, the value is parsed just when it may be out of range.
                double d = 0;
                if ((_keep || JsonValues.MayOverflowDouble(reader.ValueSpan)) && !JsonValues.TryGetFiniteDouble(ref reader, out d))
                {
                    Fail(prefix.Of(spec.Path), JsonValues.OutOfDoubleRange(Snippet(ref reader)));
                    return;
                }

                ((ValueColumnBuilder<double>)row[i]).Set(d);
                return;
            case FieldType.Boolean when token is JsonTokenType.True or JsonTokenType.False:
                ((ValueColumnBuilder<bool>)row[i]).Set(token == JsonTokenType.True);
                return;
            case FieldType.Timestamp when token == JsonTokenType.String:
                var ok = reader.ValueIsEscaped ? Timestamps.TryParseUtc(reader.GetString().AsSpan(), out var ts)
                    : IsoTimestamp.TryParseUtc(reader.ValueSpan, out ts) || Timestamps.TryParseUtc(reader.ValueSpan, out ts);
                if (!ok)
                {
                    Fail(prefix.Of(spec.Path), $"unparsable timestamp '{Snippet(ref reader)}' (expected ISO-8601, for example 2025-11-08T10:30:00Z)");
                    return;
                }

                ((ValueColumnBuilder<DateTime>)row[i]).Set(ts);
                return;
            case FieldType.Date when token == JsonTokenType.String:
                if (!Timestamps.TryParseDate(reader.GetString().AsSpan(), out var date))
                {
                    Fail(prefix.Of(spec.Path), $"unparsable date '{Snippet(ref reader)}' (expected YYYY-MM-DD)");
                    return;
                }

                ((ValueColumnBuilder<DateOnly>)row[i]).Set(date);
                return;
            default:
                Fail(prefix.Of(spec.Path), $"wrong type: expected {Expected(spec.Type)}, got {Found(ref reader)}");
                return;
        }
    }

    /// <summary>A text value into a UTF-8 column: its bytes as they are, unescaped when they need it; validating only, just that it is there.</summary>
    private void SetUtf8(ref Utf8JsonReader reader, Node.Entry entry, Utf8ColumnBuilder column)
    {
        if (!_keep && !entry.Needed)
        {
            column.Set(default);
        }
        else if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            column.Set(reader.ValueSpan);
        }
        else
        {
            // Unescaped text is never longer than its escaped form.
            var room = column.Reserve(reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length);
            column.SetReserved(reader.CopyString(room));
        }
    }

    /// <summary>A text value as a string; a field whose values repeat (customer ids, SKUs) reuses recent strings.</summary>
    private string Text(ref Utf8JsonReader reader, Node.Entry entry)
    {
        if (entry.StringSlot < 0 || reader.ValueIsEscaped || reader.HasValueSequence)
        {
            return reader.GetString()!;
        }

        return (_strings[entry.StringSlot] ??= new Utf8StringCache()).Get(reader.ValueSpan);
    }

    private static int MatchValue(ReadOnlySpan<byte> value, byte[][] allowed)
    {
        for (var i = 0; i < allowed.Length; i++)
        {
            if (value.SequenceEqual(allowed[i])) { return i; }
        }

        return -1;
    }

    private void Fail(string? field, string message) => _problem ??= new EventProblem(field, message);

    /// <summary>What a conversion of a hostile value throws (a check missed): the event's problem, not a failure of the request.</summary>
    internal static bool IsValueError(Exception e) => e is InvalidOperationException or FormatException or ArgumentException or OverflowException;

    /// <summary>A JSON number with neither fraction nor exponent: one that <c>TryGetInt64</c> refuses only for its size.</summary>
    private static bool IsWhole(ReadOnlySpan<byte> number) => number.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;

    private string Accepted() => string.Join(", ", _shape.Versions.Keys.Order());

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

    private static string Found(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => $"text '{Snippet(ref reader)}'",
        JsonTokenType.Number => $"number {Snippet(ref reader)}",
        _ => JsonRecordParser.Describe(reader.TokenType),
    };

    private static string Snippet(ref Utf8JsonReader reader) => Snip(Encoding.UTF8.GetString(reader.ValueSpan));

    private static string Snip(string raw) => TextClip.Clip(raw, 60);

    internal static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        var at = 0;
        while (at < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[at..], out _, out var used) != System.Buffers.OperationStatus.Done)
            {
                return at;
            }

            at += used;
        }

        return at;
    }

    /// <summary>The event's position in a request, for messages: <c>event 3</c>, <c>line 7</c>.</summary>
    public static string Where(int index, int? line) => line is { } l ? string.Create(CultureInfo.InvariantCulture, $"line {l}") : string.Create(CultureInfo.InvariantCulture, $"event {index}");
}

/// <summary>
/// Where a child row's fields are (<c>items[2].</c>), spelled out only for an error message: a string per child row
/// would be built for every item of every event and read almost never.
/// </summary>
internal readonly record struct FieldPrefix(string? ChildPath, int Index)
{
    public string Of(string path) => ChildPath is null ? path : $"{ChildPath}[{Index}].{path}";
}
