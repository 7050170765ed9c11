using System.Text.Json;
using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>Reads file-type definitions from YAML (validated: file, line, key) and to/from the JSON kept in the catalog.</summary>
public static partial class FileTypeParser
{
    /// <summary>The defaults, written once in <see cref="FileType"/>'s property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly FileType Default = OptionDefaults.Of<FileType>();

    /// <summary>
    /// Reads one definition. <c>fields</c> maps each name (as in the file) to a type (<c>vehicle_id: string</c>) or to
    /// <c>{type: string, required: false, column: vehicle, format: "yyyy/MM/dd HH:mm", coerce: true}</c>; fields are
    /// required unless marked otherwise.
    /// </summary>
    public static FileType? Parse(ConfigMap map)
    {
        var name = map.RequiredString("name", doc: "The file type's name: letters, digits and '_' (it names folders and dead-letter sources).");
        var pattern = map.RequiredString("pattern", doc: "The file names of this type, a glob such as `vehicles_*.json` (names only, no folders).");
        var format = map.Enum("format", Default.Format, doc: "`json` (a document: an array, bare or under `root_key`), `ndjson` (one object a line) or `csv`.");
        var rootKey = map.String("root_key", doc: "format json: the key whose value is the array of records; leave it out for a bare array.");
        var table = map.RequiredString("table", doc: "The lake table the rows land in, `zone.name`.");
        var nameDate = map.String("name_date", doc: "Date the rows by the file's name instead of a field: a date format with year, month and day found in the name (for example `yyyyMMdd`); each file is then its date's partition.");
        var eventTime = nameDate is null ? map.RequiredString("event_time", doc: "The required timestamp field whose UTC date is a record's partition (required unless `name_date`).") : map.String("event_time") ?? "";
        var loadOrder = map.Int("load_order", Default.LoadOrder, -1000, 1000, doc: "Files of types with a lower number load first (a dimension before its facts).");
        var lineage = map.Bool("lineage", Default.Lineage, doc: "Add the lineage columns `_file`, `_row` and `_loaded_at` to every row.");
        var header = map.Enum("header", Default.Header, doc: "format csv: columns matched `by_name` to the header line, or `by_position`.");
        var invalidText = map.Enum("invalid_text", Default.InvalidText, doc: "format csv: bytes that are not UTF-8: `fail` (the whole file) or `replace` (read as U+FFFD, so the row lands and rules downstream decide).");
        var policy = map.Enum("on_invalid", Default.OnInvalid, doc: "A bad record: `reject_file` (nothing of the file lands) or `quarantine_rows` (good rows land, bad ones go to the dead letters with reason and position).");
        var maxBad = map.Int("max_bad_rows", Default.MaxBadRows, 0, doc: "`quarantine_rows`: more bad records than this fail the whole file.");
        var delimiter = map.String("delimiter", Default.Delimiter.ToString(), doc: "format csv: the one character between values.") ?? Default.Delimiter.ToString();
        var partitionName = map.String("partition_column", doc: "The name of the partition column (default `date`, or `_file_date` with `name_date`); give another when a field lands in a column of that name.");
        var fields = new List<FieldSpec>();
        var reads = new List<FieldRead>();
        var fieldsMap = map.Map("fields", required: true, doc: "The fields of a record, by their name in the file: `name: type` (required) or the long form below.");
        if (fieldsMap is not null)
        {
            // A description shows one field written long (its every key); a field written short is just its type.
            foreach (var key in fieldsMap.Describing ? ["<field>"] : fieldsMap.Keys.ToList())
            {
                var nested = fieldsMap.Describing || fieldsMap.IsMapping(key) ? fieldsMap.Map(key, doc: "A field written long (the short form `<field>: type` is a required field of that type).") : null;
                if (nested is not null)
                {
                    var type = nested.RequiredString("type", doc: "string, integer, double, boolean, timestamp or date.");
                    var required = nested.Bool("required", true, doc: "A record without the field is bad.");
                    var column = nested.String("column", doc: "The column the field lands in, when it differs from its name in the file.") ?? key;
                    var timeFormat = nested.String("format", doc: "timestamp or date: how the text is written (`yyyy/MM/dd HH:mm`, `MMM d yyyy`), or `epoch_seconds` / `epoch_millis` for a number.");
                    var coerce = nested.Bool("coerce", false, doc: "string: read any JSON value (a number, a boolean) as its text.");
                    nested.Done();
                    if (FieldTypes.TryParse(type, out var t))
                    {
                        if (!IdentifierRegex().IsMatch(column)) { nested.Error("column", $"'{column}' must be letters, digits and '_' (it names the table's column)"); }
                        if (timeFormat is not null && FieldRead.FormatProblem(timeFormat, t) is { } formatProblem) { nested.Error("format", formatProblem); }
                        if (coerce && t != FieldType.String) { nested.Error("coerce", $"applies to text fields (it reads any JSON value as its text), not {t.Name()}"); }
                        fields.Add(new FieldSpec(column, t, required));
                        reads.Add(new FieldRead(key, timeFormat, coerce));
                    }
                    else if (type.Length > 0) { nested.Error("type", $"unknown field type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
                }
                else
                {
                    var type = fieldsMap.String(key) ?? "";
                    if (FieldTypes.TryParse(type, out var t)) { fields.Add(new FieldSpec(key, t, true)); reads.Add(new FieldRead(key)); }
                    else { fieldsMap.Error(key, $"unknown field type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
                }
            }

            fieldsMap.Done();
            if (fields.Count == 0) { map.Error("fields", "a file type needs at least one field"); }
            foreach (var twice in fields.GroupBy(f => f.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
            {
                map.Error("fields", $"two fields land in column '{twice.Key}' ({string.Join(", ", reads.Where((_, i) => string.Equals(fields[i].Name, twice.Key, StringComparison.OrdinalIgnoreCase)).Select(r => r.Source))}): give one another column:");
            }
        }

        // event_time may name the field as the file does or its column.
        var renamed = reads.FindIndex(r => r.Source == eventTime);
        if (renamed >= 0 && fields.All(f => f.Name != eventTime))
        {
            eventTime = fields[renamed].Name;
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

        var partition = partitionName ?? (nameDate is null ? FileType.PartitionKey : FileType.FileDateColumn);
        if (partitionName is not null && !IdentifierRegex().IsMatch(partitionName)) { map.Error("partition_column", $"'{partitionName}' must be letters, digits and '_'"); }
        if (fields.FirstOrDefault(f => string.Equals(f.Name, partition, StringComparison.OrdinalIgnoreCase)) is { } taken)
        {
            var source = reads[fields.IndexOf(taken)].Source;
            map.Error(partitionName is null ? "fields" : "partition_column", partitionName is null
                ? $"'{taken.Name}' is the name of the partition column; to keep the field's name, name the partition column otherwise " +
                  $"(partition_column: {(nameDate is null ? "event_date" : "file_date")}), or land the field in another column ({source}: {{ type: {taken.Type.Name()}, column: {source}_value }})"
                : $"'{partitionName}' is also the column of field '{source}': choose another partition column name");
        }
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
            Reads = reads.Any(r => r.Format is not null || r.Coerce) || reads.Where((r, i) => r.Source != fields[i].Name).Any() ? reads : null, PartitionName = partitionName,
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
        type.Fields.Select((f, i) =>
        {
            var read = type.ReadOf(i);
            return new StoredField(f.Name, f.Type.Name(), f.Required) { Source = read.Source == f.Name ? null : read.Source, Format = read.Format, Coerce = read.Coerce };
        }).ToList(),
        type.OnInvalid.ToString(), type.MaxBadRows, type.Delimiter.ToString())
    {
        NameDate = type.NameDate, LoadOrder = type.LoadOrder, Lineage = type.Lineage, Header = type.Header.ToString(), InvalidText = type.InvalidText.ToString(),
        PartitionColumn = type.PartitionName,
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
            // Types stored before field options existed have none: every field read as named.
            Reads = s.Fields.Any(f => f.Source is not null || f.Format is not null || f.Coerce) ? s.Fields.Select(f => new FieldRead(f.Source ?? f.Name, f.Format, f.Coerce)).ToList() : null,
            PartitionName = s.PartitionColumn,
        };
    }

    private sealed record StoredField(string Name, string Type, bool Required)
    {
        /// <summary>The field's name in the file, when its column is named otherwise.</summary>
        public string? Source { get; init; }

        public string? Format { get; init; }

        public bool Coerce { get; init; }
    }

    private sealed record StoredFileType(
        string Name, string Pattern, string Format, string? RootKey, string Table, string EventTime,
        List<StoredField> Fields, string OnInvalid, int MaxBadRows, string Delimiter)
    {
        public string? NameDate { get; init; }

        public int LoadOrder { get; init; }

        public bool Lineage { get; init; }

        public string? Header { get; init; }

        public string? InvalidText { get; init; }

        public string? PartitionColumn { get; init; }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex TableRegex();
}
