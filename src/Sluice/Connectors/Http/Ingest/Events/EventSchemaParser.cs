using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// Reads one schema version from YAML, validated with file, line and key. <c>fields</c> maps a dotted JSON path to a type
/// (<c>customer.id: string</c>) or to <c>{type, required, pii, values, required_when}</c>; fields are required unless
/// marked otherwise. <c>children</c> maps an array path to its element fields and child table.
/// </summary>
public static partial class EventSchemaParser
{
    public static EventSchemaVersion? ParseFile(string path, int version, string table, ConfigErrors errors)
    {
        var map = ConfigMap.Load(path, errors);
        return map is null ? null : Parse(map, version, table);
    }

    public static EventSchemaVersion? Parse(ConfigMap map, int version, string table)
    {
        ArgumentNullException.ThrowIfNull(map);
        var before = map.Errors.All.Count;
        map.Declare("version", "whole number", "its number under schemas:", "The schema version the file describes; it must equal the number the source lists it under (`schemas: {1: schemas/x.v1.yaml}`).");
        var declared = map.Int("version", version);
        if (declared != version)
        {
            map.Error("version", $"the file says version {declared} but the recipe lists it under schemas: {version}");
        }

        var fields = ParseFields(map, "fields", required: true, "The event's fields by dotted JSON path: `customer.id: string` (a required field) or the long form below.");
        var children = new List<EventChild>();
        foreach (var (name, child) in map.NamedMaps("children", doc: "Arrays of the event by dotted path, each landed as rows of a child table."))
        {
            if (!child.Describing && !PathRegex().IsMatch(name)) { child.Error("(name)", $"'{name}' must be a dotted path of letters, digits and '_'"); }
            child.Declare("table", "text", "<table>_<path>", "The child table the array's elements land in.");
            var childTable = child.String("table", $"{table}_{EventField.ColumnName(name)}") ?? "";
            var required = child.Bool("required", false, doc: "An event without the array is bad.");
            var childFields = ParseFields(child, "fields", required: true, "The fields of an element, by dotted path inside it, written as the event's.");
            child.Done();
            if (!HttpIngestOptions.IdentifierRegex().IsMatch(childTable)) { child.Error("table", $"'{childTable}' must be letters, digits and '_'"); }
            children.Add(new EventChild(name, childTable, required, childFields));
        }

        map.Done();
        foreach (var f in fields.Where(f => f.RequiredWhen is not null))
        {
            var condition = fields.FirstOrDefault(c => c.Path == f.RequiredWhen!.Field);
            if (condition is null || condition.Type != FieldType.String)
            {
                map.Error("fields", $"'{f.Path}': required_when names '{f.RequiredWhen!.Field}', which must be a text field of this schema");
            }
        }

        foreach (var f in fields.Where(f => children.Any(c => f.Path.StartsWith(c.Path + ".", StringComparison.Ordinal) || f.Path == c.Path)))
        {
            map.Error("fields", $"'{f.Path}' lies inside the child array '{children.First(c => f.Path.StartsWith(c.Path, StringComparison.Ordinal)).Path}'; declare it under children");
        }

        foreach (var f in fields.Where(f => fields.Any(o => o.Path.StartsWith(f.Path + ".", StringComparison.Ordinal))))
        {
            map.Error("fields", $"'{f.Path}' is both a value and an object holding other fields");
        }

        if (fields.Count == 0 && map.Errors.All.Count == before) { map.Error("fields", "a schema needs at least one field"); }
        return map.Errors.All.Count > before ? null : new EventSchemaVersion(version, map.File, fields, children);
    }

    private static List<EventField> ParseFields(ConfigMap parent, string key, bool required, string doc)
    {
        var fields = new List<EventField>();
        var map = parent.Map(key, required, doc);
        if (map is null)
        {
            return fields;
        }

        // A description shows one field written long (its every key); a field written short is just its type.
        foreach (var path in map.Describing ? ["<field>"] : map.Keys.ToList())
        {
            if (!map.Describing && !PathRegex().IsMatch(path))
            {
                map.Error(path, $"'{path}' must be a dotted path of letters, digits and '_' (for example customer.email)");
                continue;
            }

            if (map.Describing || map.IsMapping(path))
            {
                var nested = map.Map(path, doc: "A field written long (the short form `<field>: type` is a required field of that type).")!;
                var typeText = nested.RequiredString("type", doc: "string, integer, double, boolean, timestamp or date.");
                var isRequired = nested.Bool("required", true, doc: "An event without the field is refused.");
                var pii = nested.Bool("pii", false, doc: "text: stored as a keyed hash, never as written.");
                nested.Declare("values", "list of text", null, "text: the only values taken; another is refused.");
                var values = nested.Has("values") ? nested.StringList("values") : null;
                var whenText = nested.String("required_when", doc: "Required only when another text field has one of some values: `field=value` or `field=a|b` (otherwise optional).");
                nested.Done();
                FieldCondition? when = null;
                if (whenText is not null)
                {
                    when = ParseCondition(whenText);
                    if (when is null) { nested.Error("required_when", $"expected field=value or field=a|b, got '{whenText}'"); }
                }

                if (!FieldTypes.TryParse(typeText, out var type))
                {
                    if (typeText.Length > 0) { nested.Error("type", $"unknown field type '{typeText}' (expected string, integer, double, boolean, timestamp or date)"); }
                    continue;
                }

                if (values is not null && type != FieldType.String) { nested.Error("values", "only text fields take a list of values"); }
                if (pii && type != FieldType.String) { nested.Error("pii", "only text fields can be marked pii (they are stored as a keyed hash)"); }
                fields.Add(new EventField(path, type, isRequired && when is null, pii, values, when));
            }
            else
            {
                var typeText = map.String(path) ?? "";
                if (FieldTypes.TryParse(typeText, out var type)) { fields.Add(new EventField(path, type, true, false, null, null)); }
                else { map.Error(path, $"unknown field type '{typeText}' (expected string, integer, double, boolean, timestamp or date)"); }
            }
        }

        map.Done();
        return fields;
    }

    private static FieldCondition? ParseCondition(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == text.Length - 1) { return null; }
        var field = text[..eq].Trim();
        var values = text[(eq + 1)..].Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return PathRegex().IsMatch(field) && values.Length > 0 ? new FieldCondition(field, values) : null;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$")]
    private static partial Regex PathRegex();
}
