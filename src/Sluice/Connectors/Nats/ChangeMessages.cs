using System.Buffers;
using System.Text.Json;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Nats;

/// <summary>
/// One change of a CDC table as a JetStream message (<see cref="CdcChangeLog"/>): the table's schema (name, fields,
/// key) and the row's values, as JSON. Values keep their exact type: a timestamp as its ticks, a double as its bits,
/// a date as its day number, a decimal as its text, and a value the column's type cannot hold (a Postgres
/// <c>infinity</c>) as its verbatim text, so the consumer's rows equal the reader's. With <c>s</c>, the relay's low-water
/// mark when it published the change (<see cref="SettledChanges"/>).
/// </summary>
internal static class ChangeMessages
{
    public static byte[] Encode(ColumnBatch table, int row, long? settled = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("t", table.Schema.Table);
            json.WriteStartArray("k");
            foreach (var k in table.Schema.Key) { json.WriteStringValue(k); }
            json.WriteEndArray();
            json.WriteStartArray("f");
            foreach (var f in table.Schema.Fields)
            {
                json.WriteStartArray();
                json.WriteStringValue(f.Name);
                json.WriteNumberValue((int)f.Type);
                json.WriteBooleanValue(f.Required);
                json.WriteNumberValue(f.Precision);
                json.WriteNumberValue(f.Scale);
                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteStartArray("v");
            for (var c = 0; c < table.Schema.Fields.Count; c++)
            {
                if (table.Verbatim(c)?[row] is { } verbatim)
                {
                    json.WriteStartObject();
                    json.WriteString("verbatim", verbatim);
                    json.WriteEndObject();
                    continue;
                }

                switch (table.Columns[c])
                {
                    case string?[] s when s[row] is { } text: json.WriteStringValue(text); break;
                    case long?[] l when l[row] is { } n: json.WriteNumberValue(n); break;
                    case double?[] d when d[row] is { } x: json.WriteNumberValue(BitConverter.DoubleToInt64Bits(x)); break;
                    case bool?[] b when b[row] is { } flag: json.WriteBooleanValue(flag); break;
                    case DateTime?[] t when t[row] is { } at: json.WriteNumberValue(at.Ticks); break;
                    case DateOnly?[] d when d[row] is { } day: json.WriteNumberValue(day.DayNumber); break;
                    default: json.WriteNullValue(); break;
                }
            }

            json.WriteEndArray();
            if (settled is { } mark) { json.WriteNumber("s", mark); }
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The value of column <paramref name="name"/> in <paramref name="row"/> as text (null when the table has no such column or the value is null).</summary>
    public static string? Text(ColumnBatch table, string name, int row) =>
        table.Schema.IndexOf(name) is var c and >= 0 ? table.Value(c, row) switch
        {
            null => null,
            IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
            var v => v.ToString(),
        } : null;
}

/// <summary>
/// Turns the change messages of a consumer batch back into column batches: consecutive rows of one table (one schema)
/// become one batch, so the order between tables is kept as the reader emitted it.
/// </summary>
/// <param name="sequences">
/// Whether each row also carries its message's JetStream sequence as <c>_offset</c>, as the http source's cluster rows
/// do: a lake sink tells by it which changes of a batch that comes again it committed already (the same message has the
/// same sequence on every delivery).
/// </param>
internal sealed class ChangeDecoder(bool sequences = false) : IJetStreamRecords
{
    private readonly Dictionary<string, TableSchema> _schemas = new(StringComparer.Ordinal);
    private readonly List<ColumnBatch> _done = [];
    private TableSchema? _schema;
    private readonly List<JsonElement> _rows = [];
    private readonly List<long> _sequences = [];

    /// <summary>The low-water mark the messages prove (<see cref="SettledChanges"/>).</summary>
    public SettledChanges Settled { get; } = new();

    /// <summary>Adds one message; false when it is not a change message (the caller dead-letters it).</summary>
    public bool Add(ReadOnlyMemory<byte> record, long sequence)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(record);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return false;
        }

        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("t", out var t) || !root.TryGetProperty("f", out var f) || !root.TryGetProperty("v", out _))
        {
            return false;
        }

        var signature = t.GetString() + "\n" + f.GetRawText() + "\n" + (root.TryGetProperty("k", out var k) ? k.GetRawText() : "");
        if (!_schemas.TryGetValue(signature, out var schema))
        {
            var fields = f.EnumerateArray().Select(x => new FieldSpec(x[0].GetString()!, (FieldType)x[1].GetInt32(), x[2].GetBoolean(), x[3].GetInt32(), x[4].GetInt32())).ToList();
            if (sequences && !fields.Any(x => x.Name == StreamShape.OffsetColumn)) { fields.Add(new FieldSpec(StreamShape.OffsetColumn, FieldType.Integer, false)); }
            schema = new TableSchema(t.GetString()!, fields) { Key = k.ValueKind == JsonValueKind.Array ? k.EnumerateArray().Select(x => x.GetString()!).ToList() : [] };
            _schemas[signature] = schema;
        }

        if (!ReferenceEquals(schema, _schema)) { Close(); _schema = schema; }
        _rows.Add(root.GetProperty("v"));
        _sequences.Add(sequence);
        if (root.TryGetProperty("s", out var s) && s.TryGetInt64(out var mark)) { Settled.Seen(sequence, mark); }
        return true;
    }

    public IReadOnlyList<ColumnBatch> Flush()
    {
        Close();
        var done = _done.ToList();
        _done.Clear();
        return done;
    }

    private void Close()
    {
        if (_schema is null || _rows.Count == 0) { return; }
        var fields = _schema.Fields;
        var columns = new Array?[fields.Count];
        string?[]?[]? verbatim = null;
        for (var c = 0; c < fields.Count; c++)
        {
            var n = _rows.Count;
            columns[c] = fields[c].Type switch
            {
                FieldType.Integer => new long?[n],
                FieldType.Double => new double?[n],
                FieldType.Boolean => new bool?[n],
                FieldType.Timestamp => new DateTime?[n],
                FieldType.Date => new DateOnly?[n],
                _ => new string?[n],
            };
            for (var r = 0; r < n; r++)
            {
                if (c >= _rows[r].GetArrayLength())
                {
                    // The column this decoder adds: the message's sequence.
                    ((long?[])columns[c]!)[r] = _sequences[r];
                    continue;
                }

                var v = _rows[r][c];
                if (v.ValueKind == JsonValueKind.Null) { continue; }
                if (v.ValueKind == JsonValueKind.Object)
                {
                    verbatim ??= new string?[]?[fields.Count];
                    (verbatim[c] ??= new string?[n])[r] = v.GetProperty("verbatim").GetString();
                    continue;
                }

                switch (columns[c])
                {
                    case long?[] l: l[r] = v.GetInt64(); break;
                    case double?[] d: d[r] = BitConverter.Int64BitsToDouble(v.GetInt64()); break;
                    case bool?[] b: b[r] = v.GetBoolean(); break;
                    case DateTime?[] t: t[r] = new DateTime(v.GetInt64(), DateTimeKind.Utc); break;
                    case DateOnly?[] d: d[r] = DateOnly.FromDayNumber(v.GetInt32()); break;
                    case string?[] s: s[r] = v.GetString(); break;
                }
            }
        }

        _done.Add(new ColumnBatch(_schema, columns, null, _rows.Count, verbatim));
        _rows.Clear();
        _sequences.Clear();
    }
}

/// <summary>
/// How a cluster pipeline reads the messages of its JetStream stream into rows (<see cref="ClusterHttpSource"/>): the
/// http source's landing records by default; a CDC pipeline's change messages with <see cref="ChangeDecoder"/>.
/// </summary>
internal interface IJetStreamRecords
{
    /// <summary>Adds one message; false when it is not one this reader understands (the caller dead-letters it).</summary>
    bool Add(ReadOnlyMemory<byte> record, long sequence);

    /// <summary>The rows added since the last flush, by table.</summary>
    IReadOnlyList<ColumnBatch> Flush();

    /// <summary>The low-water mark of the changes read (<see cref="RecordBatch.SettledBelow"/>), null for records that are no changes.</summary>
    SettledChanges? Settled => null;
}
