using System.Globalization;
using System.Text.Json;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Pull;

/// <summary>
/// Pulled records as a batch: <c>_id</c> and <c>_modified</c> (the record's id and modification stamp, what overlap
/// and dedup go by), then the declared columns read from the record's top-level fields, or the record as JSON text
/// in <c>_record</c> when none are declared. A record whose value does not convert is refused with the field and why.
/// </summary>
public static class PulledRows
{
    public const string Id = "_id";
    public const string Modified = "_modified";
    public const string Record = "_record";

    public static IReadOnlyList<string> Reserved { get; } = [Id, Modified, Record];

    public static TableSchema Schema(string table, IReadOnlyList<FieldSpec> columns) =>
        new(table, [new FieldSpec(Id, FieldType.String, true), new FieldSpec(Modified, FieldType.Timestamp, true), .. columns.Count == 0 ? [new FieldSpec(Record, FieldType.String, false)] : columns]);

    /// <summary>The records' rows, those refused with why, and the index in <paramref name="records"/> of each row kept.</summary>
    public static (ColumnBatch Rows, IReadOnlyList<(PulledRecord Record, string Reason)> Refused, IReadOnlyList<int> Kept) ToBatch(TableSchema schema, IReadOnlyList<PulledRecord> records)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(records);
        var fields = schema.Fields;
        var kept = new List<object?[]>(records.Count);
        var keptAt = new List<int>(records.Count);
        var refused = new List<(PulledRecord, string)>();
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            var row = new object?[fields.Count];
            row[0] = record.Id;
            row[1] = record.Stamp;
            var problem = Fill(fields, record, row);
            if (problem is null) { kept.Add(row); keptAt.Add(i); }
            else { refused.Add((record, problem)); }
        }

        var columns = new Array[fields.Count];
        for (var c = 0; c < fields.Count; c++)
        {
            columns[c] = Column(fields[c].Type, kept, c);
        }

        return (new ColumnBatch(schema, columns, kept.Count), refused, keptAt);
    }

    private static string? Fill(IReadOnlyList<FieldSpec> fields, PulledRecord record, object?[] row)
    {
        if (fields[2].Name == Record)
        {
            row[2] = System.Text.Encoding.UTF8.GetString(record.Json.Span);
            return null;
        }

        using var doc = JsonDocument.Parse(record.Json);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) { return "the record is not a JSON object"; }
        for (var c = 2; c < fields.Count; c++)
        {
            var field = fields[c];
            if (!TryFind(doc.RootElement, field.Name, out var value) || value.ValueKind == JsonValueKind.Null) { continue; }
            var converted = Convert(field.Type, value);
            if (converted is null) { return $"field '{field.Name}': {Clip(value.GetRawText())} is not a {field.Type.Name()}"; }
            row[c] = converted;
        }

        return null;
    }

    private static bool TryFind(JsonElement record, string name, out JsonElement value)
    {
        if (record.TryGetProperty(name, out value)) { return true; }
        foreach (var p in record.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) { value = p.Value; return true; }
        }

        return false;
    }

    private static object? Convert(FieldType type, JsonElement value) => type switch
    {
        FieldType.String => value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText(),
        FieldType.Integer => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var l) ? l
            : value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out l) ? l : null,
        FieldType.Double => value.ValueKind == JsonValueKind.Number ? value.GetDouble()
            : value.ValueKind == JsonValueKind.String && double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? d : null,
        FieldType.Boolean => value.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null },
        FieldType.Timestamp => value.ValueKind == JsonValueKind.String && TryTime(value.GetString()!, out var t) ? t : null,
        FieldType.Date => value.ValueKind == JsonValueKind.String && DateOnly.TryParseExact(value.GetString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day) ? day : null,
        _ => null,
    };

    /// <summary>ISO 8601 with an offset or <c>Z</c> (Salesforce's <c>+0000</c> too), or without one read as UTC.</summary>
    private static bool TryTime(string text, out DateTime time)
    {
        if (text.Length > 5 && (text[^5] is '+' or '-') && char.IsAsciiDigit(text[^1]) && !text[^5..].Contains(':', StringComparison.Ordinal))
        {
            text = text[..^2] + ":" + text[^2..];
        }

        var ok = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed);
        time = ok ? parsed.UtcDateTime : default;
        return ok;
    }

    private static string Clip(string raw) => raw.Length <= 80 ? raw : raw[..80] + "...";

    private static Array Column(FieldType type, List<object?[]> rows, int c) => type switch
    {
        FieldType.String => rows.Select(r => (string?)r[c]).ToArray(),
        FieldType.Integer => rows.Select(r => (long?)r[c]).ToArray(),
        FieldType.Double => rows.Select(r => (double?)r[c]).ToArray(),
        FieldType.Boolean => rows.Select(r => (bool?)r[c]).ToArray(),
        FieldType.Timestamp => rows.Select(r => (DateTime?)r[c]).ToArray(),
        FieldType.Date => rows.Select(r => (DateOnly?)r[c]).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
