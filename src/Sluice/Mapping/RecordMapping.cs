using System.Globalization;
using Sluice.Core.Config;
using Sluice.Core.Schema;
using Sluice.Core.Text;

namespace Sluice.Mapping;

/// <summary>How a number found where a timestamp is expected is read.</summary>
public enum NumericTime
{
    /// <summary>Numbers are refused: the timestamp must be ISO-8601 text.</summary>
    None,

    /// <summary>Seconds since 1970-01-01T00:00:00Z.</summary>
    EpochSeconds,

    /// <summary>Milliseconds since 1970-01-01T00:00:00Z.</summary>
    EpochMillis,
}

/// <summary>
/// Where one field of the target model comes from: the first of <see cref="From"/> (dotted paths into the source
/// record, matched without regard to case) that holds a value, else <see cref="Default"/>; or always <see cref="Value"/>.
/// </summary>
public sealed record FieldMapping(string Target, IReadOnlyList<string> From, string? Value, string? Default, NumericTime Numbers, bool Lower, bool Required);

/// <summary>
/// A declarative mapping from one source's record shape to a model (<c>mappings/&lt;source&gt;.yaml</c>): per model field,
/// the path it is read from (renames and moves out of nesting), a default, a constant, and how text is cast to the
/// model's type. Adding a source is adding such a file.
/// <code>
/// name: salesforce
/// fields:
///   source: {value: salesforce}
///   source_id: salesforce_object_id
///   occurred_at: timestamp
///   status: attributes.status
///   confidence_score: {from: attributes.confidence_score, default: 0}
/// </code>
/// </summary>
public sealed class RecordMapping
{
    public required string Name { get; init; }

    /// <summary>The file it was read from, as shown in messages.</summary>
    public required string File { get; init; }

    public required TableSchema Model { get; init; }

    /// <summary>One entry per model field that is mapped, in the model's order.</summary>
    public required IReadOnlyList<FieldMapping> Fields { get; init; }

    /// <summary>Reads and validates a mapping file against the model; every problem goes to <paramref name="errors"/>.</summary>
    public static RecordMapping? Load(string path, TableSchema model, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(errors);
        if (!System.IO.File.Exists(path))
        {
            errors.Add(path, 1, "(file)", "mapping file not found");
            return null;
        }

        var map = ConfigMap.Load(path, errors);
        return map is null ? null : Parse(map, model, Path.GetFileNameWithoutExtension(path));
    }

    public static RecordMapping Parse(ConfigMap map, TableSchema model, string fallbackName)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(model);
        var name = map.String("name", fallbackName, doc: "The mapping's name, which rules name as a source (default: the file's name).") ?? fallbackName;
        var declared = map.Map("fields", required: true, doc: "One entry per model field that is mapped, in the model's order.");
        var fields = new List<FieldMapping>();
        if (declared is not null)
        {
            var byName = new Dictionary<string, FieldMapping>(StringComparer.Ordinal);
            // A description shows one field written long (its every key) for a model field of any type.
            foreach (var key in declared.Describing ? ["<field>"] : declared.Keys.ToList())
            {
                var spec = declared.Describing ? new FieldSpec(key, FieldType.String, false) : model.Fields.FirstOrDefault(f => f.Name == key);
                if (spec is null)
                {
                    declared.Error(key, $"not a field of the {model.Table} model (fields: {string.Join(", ", model.Fields.Select(f => f.Name))})");
                    declared.String(key);
                    continue;
                }

                var parsed = ParseField(declared, key, spec);
                if (parsed is not null) { byName[key] = parsed; }
            }

            declared.Done();
            foreach (var spec in model.Fields)
            {
                if (byName.TryGetValue(spec.Name, out var f))
                {
                    fields.Add(f);
                }
                else if (spec.Required)
                {
                    map.Error("fields", $"the {model.Table} model requires '{spec.Name}': map it from a source field or give it a value");
                }
            }
        }

        map.Done();
        return new RecordMapping { Name = name, File = map.File, Model = model, Fields = fields };
    }

    private static FieldMapping? ParseField(ConfigMap fields, string key, FieldSpec spec)
    {
        if (!fields.Describing && !fields.IsMapping(key))
        {
            var path = fields.String(key) ?? "";
            if (!ValidPath(path))
            {
                fields.Error(key, $"'{path}' is not a source path (names separated by '.', for example attributes.status)");
                return null;
            }

            return new FieldMapping(key, [path], null, null, NumericTime.None, false, spec.Required);
        }

        var m = fields.Map(key, doc: "A model field written long; the short form `<field>: source.path` reads it from that path of the source record.")!;
        var from = m.StringList("from", doc: "The source path (`attributes.status`), or a list of paths tried in order until one has a value.");
        var value = m.String("value", doc: "A constant instead of `from`.");
        var fallback = m.String("default", doc: "The value when the source has none.");
        var numbers = m.Enum("numbers", NumericTime.None, doc: "timestamp: how a number is read (`epoch_seconds`, `epoch_millis`; none: a number is refused).");
        var lower = m.Bool("lower", false, doc: "text: lower-cased.");
        m.Declare("required", "true or false", "as the model", "A record without a value is refused (a field the model requires always is).");
        var required = m.Bool("required", spec.Required);
        m.Done();
        if (from.Count == 0 && value is null)
        {
            m.Error("from", "give 'from' (the source path, or a list of paths tried in order) or 'value' (a constant)");
            return null;
        }

        if (from.Count > 0 && value is not null)
        {
            m.Error("value", "a constant 'value' and 'from' exclude each other");
        }

        foreach (var p in from.Where(p => !ValidPath(p)))
        {
            m.Error("from", $"'{p}' is not a source path (names separated by '.', for example attributes.status)");
        }

        if (spec.Required && !required)
        {
            m.Error("required", $"the model requires '{key}'; a mapping cannot make it optional");
        }

        foreach (var (option, text) in new[] { ("default", fallback), ("value", value) })
        {
            if (text is not null && !Fits(text, spec.Type))
            {
                m.Error(option, $"'{text}' is not a {spec.Type.Name()} (the type of {key})");
            }
        }

        if (numbers != NumericTime.None && spec.Type != FieldType.Timestamp)
        {
            m.Error("numbers", $"only for timestamp fields; {key} is {spec.Type.Name()}");
        }

        if (lower && spec.Type != FieldType.String)
        {
            m.Error("lower", $"only for text fields; {key} is {spec.Type.Name()}");
        }

        return new FieldMapping(key, from, value, fallback, numbers, lower, required);
    }

    private static bool ValidPath(string path) =>
        path.Length > 0 && path.Split('.').All(s => s.Length > 0 && s.Trim().Length == s.Length);

    private static bool Fits(string text, FieldType type) => type switch
    {
        FieldType.String => true,
        FieldType.Integer => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
        FieldType.Double => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d),
        FieldType.Boolean => bool.TryParse(text, out _),
        FieldType.Timestamp => Timestamps.TryParseUtc(text.AsSpan(), out _),
        FieldType.Date => Timestamps.TryParseDate(text.AsSpan(), out _),
        _ => false,
    };
}
