using System.Text.Json;
using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>Reads file-type definitions from YAML (validated: file, line, key) and to/from the JSON kept in the catalog.</summary>
public static partial class FileTypeParser
{
    /// <summary>
    /// Reads one definition. <c>fields</c> maps each name to a type (<c>vehicle_id: string</c>) or to
    /// <c>{type: string, required: false}</c>; fields are required unless marked otherwise.
    /// </summary>
    public static FileType? Parse(ConfigMap map)
    {
        var name = map.RequiredString("name");
        var pattern = map.RequiredString("pattern");
        var format = map.Enum("format", FileFormat.Json);
        var rootKey = map.String("root_key");
        var table = map.RequiredString("table");
        var nameDate = map.String("name_date");
        var eventTime = nameDate is null ? map.RequiredString("event_time") : map.String("event_time") ?? "";
        var loadOrder = map.Int("load_order", 0, -1000, 1000);
        var lineage = map.Bool("lineage", false);
        var header = map.Enum("header", HeaderMatch.ByName);
        var invalidText = map.Enum("invalid_text", InvalidTextPolicy.Fail);
        var policy = map.Enum("on_invalid", InvalidRowPolicy.RejectFile);
        var maxBad = map.Int("max_bad_rows", 10_000, 0);
        var delimiter = map.String("delimiter", ",") ?? ",";
        var fields = new List<FieldSpec>();
        var fieldsMap = map.Map("fields", required: true);
        if (fieldsMap is not null)
        {
            foreach (var key in fieldsMap.Keys.ToList())
            {
                var nested = fieldsMap.IsMapping(key) ? fieldsMap.Map(key) : null;
                if (nested is not null)
                {
                    var type = nested.RequiredString("type");
                    var required = nested.Bool("required", true);
                    nested.Done();
                    if (FieldTypes.TryParse(type, out var t)) { fields.Add(new FieldSpec(key, t, required)); }
                    else if (type.Length > 0) { nested.Error("type", $"unknown field type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
                }
                else
                {
                    var type = fieldsMap.String(key) ?? "";
                    if (FieldTypes.TryParse(type, out var t)) { fields.Add(new FieldSpec(key, t, true)); }
                    else { fieldsMap.Error(key, $"unknown field type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
                }
            }

            fieldsMap.Done();
            if (fields.Count == 0) { map.Error("fields", "a file type needs at least one field"); }
        }

        map.Done();
        var errorsBefore = map.Errors.All.Count;
        if (name.Length > 0 && !IdentifierRegex().IsMatch(name)) { map.Error("name", $"'{name}' must be letters, digits and '_' (it names folders and dead-letter sources)"); }
        if (table.Length > 0 && !TableRegex().IsMatch(table)) { map.Error("table", $"'{table}' must be zone.name, letters, digits and '_' (for example raw_data.vehicle_events)"); }
        if (pattern.Contains('/', StringComparison.Ordinal)) { map.Error("pattern", "a pattern matches file names only, without folders"); }
        if (delimiter.Length != 1) { map.Error("delimiter", $"must be one character, got '{delimiter}'"); }
        if (format == FileFormat.Json && rootKey is { Length: 0 }) { map.Error("root_key", "leave it out for a bare array, or name the key"); }
        if (format != FileFormat.Json && rootKey is not null) { map.Error("root_key", $"only applies to format json, not {format.ToString().ToLowerInvariant()}"); }
        if (nameDate is not null && eventTime.Length > 0)
        {
            map.Error("event_time", "give event_time or name_date, not both: the partition comes from one of them");
        }
        else if (eventTime.Length > 0 && fields.Count > 0)
        {
            var spec = fields.FirstOrDefault(f => f.Name == eventTime);
            if (spec is null) { map.Error("event_time", $"'{eventTime}' is not one of the fields ({string.Join(", ", fields.Select(f => f.Name))})"); }
            else if (spec.Type != FieldType.Timestamp) { map.Error("event_time", $"'{eventTime}' must be a timestamp field, it is {spec.Type.Name()}"); }
            else if (!spec.Required) { map.Error("event_time", $"'{eventTime}' must be required: it decides the partition of every record"); }
        }

        var partition = nameDate is null ? FileType.PartitionKey : FileType.FileDateColumn;
        if (fields.Any(f => f.Name == partition)) { map.Error("fields", $"'{partition}' is reserved for the partition column"); }
        if (lineage && fields.FirstOrDefault(f => FileType.LineageFields.Any(l => l.Name == f.Name)) is { } clash)
        {
            map.Error("fields", $"'{clash.Name}' is reserved for a lineage column (lineage: true adds _file, _row, _loaded_at)");
        }

        if (nameDate is not null && !IsDateFormat(nameDate))
        {
            map.Error("name_date", $"'{nameDate}' is not a date format with year, month and day (for example yyyyMMdd or yyyy-MM-dd)");
        }

        if (format != FileFormat.Csv && (header != HeaderMatch.ByName || invalidText != InvalidTextPolicy.Fail))
        {
            map.Error(header != HeaderMatch.ByName ? "header" : "invalid_text", $"only applies to format csv, not {format.ToString().ToLowerInvariant()}");
        }

        if (map.Errors.All.Count > errorsBefore || name.Length == 0 || table.Length == 0 || pattern.Length == 0 || (eventTime.Length == 0 && nameDate is null))
        {
            return null;
        }

        return new FileType
        {
            Name = name, Pattern = pattern, Format = format, RootKey = rootKey, Table = table, EventTime = eventTime,
            Fields = fields, OnInvalid = policy, MaxBadRows = maxBad, Delimiter = delimiter[0],
            NameDate = nameDate, LoadOrder = loadOrder, Lineage = lineage, Header = header, InvalidText = invalidText,
        };
    }

    private static bool IsDateFormat(string format)
    {
        var probe = new DateOnly(2031, 12, 29);
        try
        {
            var text = probe.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
            return DateOnly.TryParseExact(text, format, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var back) && back == probe;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static FileType? ParseFile(string path, ConfigErrors errors)
    {
        var map = ConfigMap.Load(path, errors);
        return map is null ? null : Parse(map);
    }

    public static string ToJson(FileType type) => JsonSerializer.Serialize(new StoredFileType(
        type.Name, type.Pattern, type.Format.ToString(), type.RootKey, type.Table, type.EventTime,
        type.Fields.Select(f => new StoredField(f.Name, f.Type.Name(), f.Required)).ToList(),
        type.OnInvalid.ToString(), type.MaxBadRows, type.Delimiter.ToString())
    {
        NameDate = type.NameDate, LoadOrder = type.LoadOrder, Lineage = type.Lineage, Header = type.Header.ToString(), InvalidText = type.InvalidText.ToString(),
    });

    public static FileType FromJson(string json, string origin)
    {
        var s = JsonSerializer.Deserialize<StoredFileType>(json)!;
        return new FileType
        {
            Name = s.Name, Pattern = s.Pattern, Format = Enum.Parse<FileFormat>(s.Format), RootKey = s.RootKey, Table = s.Table,
            EventTime = s.EventTime, Fields = s.Fields.Select(f => new FieldSpec(f.Name, FieldTypes.Parse(f.Type), f.Required)).ToList(),
            OnInvalid = Enum.Parse<InvalidRowPolicy>(s.OnInvalid), MaxBadRows = s.MaxBadRows, Delimiter = s.Delimiter[0], Origin = origin,
            NameDate = s.NameDate, LoadOrder = s.LoadOrder, Lineage = s.Lineage,
            Header = s.Header is null ? HeaderMatch.ByName : Enum.Parse<HeaderMatch>(s.Header),
            InvalidText = s.InvalidText is null ? InvalidTextPolicy.Fail : Enum.Parse<InvalidTextPolicy>(s.InvalidText),
        };
    }

    private sealed record StoredField(string Name, string Type, bool Required);

    private sealed record StoredFileType(
        string Name, string Pattern, string Format, string? RootKey, string Table, string EventTime,
        List<StoredField> Fields, string OnInvalid, int MaxBadRows, string Delimiter)
    {
        public string? NameDate { get; init; }

        public int LoadOrder { get; init; }

        public bool Lineage { get; init; }

        public string? Header { get; init; }

        public string? InvalidText { get; init; }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex TableRegex();
}
