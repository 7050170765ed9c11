using System.Globalization;
using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Models.Rules;
using YamlDotNet.RepresentationModel;

namespace Sluice.Models;

/// <summary>
/// Reads model files. A SQL model may start with a <c>/* ... */</c> comment holding its header as YAML (<c>kind</c>,
/// keys, tests, ...); a clean model is a YAML file of rules. Every problem goes to <see cref="ConfigErrors"/> as
/// <c>file:line: key: what is wrong</c>, with the line of the model file itself.
/// </summary>
public static partial class ModelFileParser
{
    public static readonly IReadOnlyList<string> KnownPlaceholders = ["as_of"];

    private static readonly string[] MergeOnlyKeys = ["rewind_by", "surrogate_key", "update_existing"];

    public static ModelDefinition? ParseSql(string path, string name, ConfigErrors errors) => ParseSqlText(Display(path), File.ReadAllText(path), name, errors);

    /// <summary>Parses a SQL model from its text; <paramref name="display"/> names the file in messages.</summary>
    public static ModelDefinition? ParseSqlText(string display, string text, string name, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(text);
        var (header, sql, sqlLine) = SplitHeader(text);
        ConfigMap? map = null;
        if (header is not null)
        {
            map = LoadYaml(display, header, errors);
            if (map is null) { return null; }
        }

        var before = errors.All.Count;
        var kind = map?.Enum("kind", ModelKind.Table) ?? ModelKind.Table;
        if (kind == ModelKind.Clean)
        {
            map!.Error("kind", "kind clean is written as a YAML file of rules (models/<schema>/<name>.yaml), not as SQL");
        }

        var model = new ModelDefinition
        {
            Name = name, Kind = kind, File = display, Sql = sql, SqlLine = sqlLine,
            DeclaredDependencies = map?.StringList("depends_on") ?? [],
            Tests = map is null ? [] : ParseTests(map),
            Tags = map?.StringList("tags") ?? [],
            Reads = map?.Enum("reads", InputWindow.History) ?? InputWindow.History,
        };
        if (map is not null)
        {
            map.String("description");
            model = ParseKindOptions(map, model);
            map.Done();
        }

        CheckSql(display, sql, kind, errors);
        return errors.All.Count > before ? null : model;
    }

    public static ModelDefinition? ParseClean(string path, string name, ConfigErrors errors) => ParseCleanText(Display(path), File.ReadAllText(path), name, errors);

    /// <summary>Parses a clean model (YAML rules) from its text; <paramref name="display"/> names the file in messages.</summary>
    public static ModelDefinition? ParseCleanText(string display, string text, string name, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var map = LoadYaml(display, text, errors);
        if (map is null) { return null; }
        var before = errors.All.Count;
        var kind = map.Enum("kind", ModelKind.Clean);
        if (kind != ModelKind.Clean)
        {
            map.Error("kind", $"a YAML model is a clean model (kind: clean); write a {kind.ToString().ToLowerInvariant()} model as SQL");
        }

        map.String("description");
        var spec = ParseCleanSpec(map);
        var model = new ModelDefinition
        {
            Name = name, Kind = ModelKind.Clean, File = map.File, Clean = spec,
            DeclaredDependencies = map.StringList("depends_on"),
            Tests = ParseTests(map),
            Tags = map.StringList("tags"),
        };
        map.Done();
        return errors.All.Count > before || spec is null ? null : model;
    }

    /// <summary>Splits a leading <c>/* ... */</c> header from the SQL; the SQL keeps its place (line) in the file.</summary>
    internal static (string? Header, string Sql, int SqlLine) SplitHeader(string text)
    {
        var start = 0;
        while (start < text.Length && char.IsWhiteSpace(text[start])) { start++; }
        if (!text.AsSpan(start).StartsWith("/*"))
        {
            return (null, text, 1);
        }

        var end = text.IndexOf("*/", start + 2, StringComparison.Ordinal);
        if (end < 0)
        {
            return (text[(start + 2)..], "", 1);
        }

        var headerLine = text.AsSpan(0, start).Count('\n') + 1;
        // Blank lines in front keep YAML line numbers equal to the file's.
        var header = new string('\n', headerLine - 1) + text[(start + 2)..end];
        var sqlLine = text.AsSpan(0, end + 2).Count('\n') + 1;
        return (header, new string('\n', sqlLine - 1) + text[(end + 2)..], sqlLine);
    }

    private static ConfigMap? LoadYaml(string display, string yamlText, ConfigErrors errors)
    {
        try
        {
            var yaml = new YamlStream();
            yaml.Load(new StringReader(yamlText));
            if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            {
                errors.Add(display, yamlText.Count(c => c == '\n') + 1, "(header)", "the leading /* */ comment of a model holds its header as YAML key: value lines");
                return null;
            }

            return new ConfigMap(display, root, errors);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            errors.Add(display, (int)e.Start.Line, "(header)", $"not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return null;
        }
    }

    private static ModelDefinition ParseKindOptions(ConfigMap map, ModelDefinition model)
    {
        var uniqueKey = map.StringList("unique_key");
        var partitionBy = map.String("partition_by");
        var rewindBy = map.String("rewind_by");
        var surrogate = map.String("surrogate_key");
        var updateExisting = map.Bool("update_existing", true);
        var onSchemaChange = map.Enum("on_schema_change", OnSchemaChange.AppendNewColumns);
        string[] incrementalKeys = ["partition_by", "rewind_by", "update_existing"];
        string[] snapshotKeys = ["tracked", "check_cols", "strategy", "updated_at", "valid_from", "valid_to", "is_current", "absent", "hard_deletes", "valid_to_current", "scd_id", "updated_at_column", "is_deleted"];

        foreach (var name in uniqueKey.Concat(new[] { partitionBy, rewindBy, surrogate }.OfType<string>()))
        {
            if (!SqlText.IsIdentifier(name)) { map.Error("unique_key", $"'{name}' is not a plain column name (letters, digits, '_')"); }
        }

        switch (model.Kind)
        {
            case ModelKind.Incremental:
                foreach (var key in snapshotKeys.Where(map.Has)) { map.Error(key, "only applies to kind snapshot"); }
                if ((uniqueKey.Count > 0) == (partitionBy is not null))
                {
                    map.Error(uniqueKey.Count > 0 ? "partition_by" : "unique_key", "an incremental model merges by unique_key (keyed merge) or owns a date partition (partition_by): give exactly one of them");
                }
                else if (partitionBy is not null)
                {
                    foreach (var key in MergeOnlyKeys.Where(map.Has)) { map.Error(key, "only applies to a keyed merge (unique_key), not to partition_by"); }
                }

                return model with { Incremental = new IncrementalSpec(uniqueKey, partitionBy, rewindBy, surrogate, updateExisting) { OnSchemaChange = onSchemaChange } };
            case ModelKind.Snapshot:
                foreach (var key in incrementalKeys.Where(map.Has)) { map.Error(key, "only applies to kind incremental"); }
                if (uniqueKey.Count == 0) { map.Error("unique_key", "a snapshot needs unique_key: the column(s) naming what the versions are of"); }
                return model with { Snapshot = ParseSnapshot(map, uniqueKey, surrogate) with { OnSchemaChange = onSchemaChange } };
            default:
                foreach (var key in incrementalKeys.Concat(snapshotKeys).Append("unique_key").Append("surrogate_key").Append("on_schema_change").Where(map.Has))
                {
                    map.Error(key, $"only applies to kinds incremental and snapshot, not {model.Kind.ToString().ToLowerInvariant()}");
                }

                return model;
        }
    }

    /// <summary>A snapshot's options, named as dbt's (strategy, updated_at, check_cols, hard_deletes, valid_to_current) with Sluice's earlier names (tracked, absent) kept as aliases.</summary>
    private static SnapshotSpec ParseSnapshot(ConfigMap map, IReadOnlyList<string> uniqueKey, string? surrogate)
    {
        var strategy = map.Enum("strategy", SnapshotStrategy.Check);
        var updatedAt = map.String("updated_at");
        if (map.Has("tracked") && map.Has("check_cols")) { map.Error("tracked", "tracked is the earlier name of check_cols: give one of them"); }
        var checkKey = map.Has("check_cols") ? "check_cols" : "tracked";
        IReadOnlyList<string>? tracked = map.Has(checkKey) ? map.StringList(checkKey) : null;
        if (tracked is ["all"]) { tracked = null; }
        if (tracked is { Count: 0 }) { map.Error(checkKey, "list the columns whose change opens a new version, or write all"); }

        var hardDeletes = map.Enum("hard_deletes", HardDeletes.Ignore);
        if (map.String("absent") is { } absent)
        {
            if (map.Has("hard_deletes")) { map.Error("absent", "absent is the earlier name of hard_deletes: give one of them (absent: keep is hard_deletes: ignore, absent: close is hard_deletes: invalidate)"); }
            else if (absent == "keep") { hardDeletes = HardDeletes.Ignore; }
            else if (absent == "close") { hardDeletes = HardDeletes.Invalidate; }
            else { map.Error("absent", $"expected keep or close, got '{absent}' (or use hard_deletes: ignore, invalidate or new_record)"); }
        }

        if (strategy == SnapshotStrategy.Timestamp)
        {
            if (updatedAt is null) { map.Error("strategy", "strategy timestamp needs updated_at: the column of the result that moves when the row changes"); }
            if (tracked is not null) { map.Error(checkKey, "only applies to strategy check (the timestamp strategy compares updated_at)"); }
        }
        else if (updatedAt is not null)
        {
            map.Error("updated_at", "only applies to strategy timestamp (add strategy: timestamp)");
        }

        var validToCurrent = map.String("valid_to_current");
        if (validToCurrent is not null && !DateOnly.TryParseExact(validToCurrent, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            map.Error("valid_to_current", $"'{validToCurrent}' is not a date yyyy-MM-dd (for example 9999-12-31)");
        }

        var spec = new SnapshotSpec(
            uniqueKey, tracked, surrogate, map.String("valid_from", "valid_from")!, map.String("valid_to", "valid_to")!, map.String("is_current", "is_current")!, hardDeletes)
        {
            Strategy = strategy, UpdatedAt = updatedAt, ValidToCurrent = validToCurrent,
            ScdId = map.String("scd_id"), UpdatedAtColumn = map.String("updated_at_column"), IsDeleted = map.String("is_deleted", "is_deleted")!,
        };
        if (map.Has("is_deleted") && hardDeletes != HardDeletes.NewRecord) { map.Error("is_deleted", "only applies to hard_deletes: new_record"); }
        foreach (var name in spec.EngineColumns.Concat(tracked ?? []).Concat(new[] { updatedAt }.OfType<string>()))
        {
            if (!SqlText.IsIdentifier(name)) { map.Error("unique_key", $"'{name}' is not a plain column name (letters, digits, '_')"); }
        }

        if (spec.EngineColumns.Distinct(StringComparer.OrdinalIgnoreCase).Count() != spec.EngineColumns.Count)
        {
            map.Error("valid_from", $"the columns the snapshot fills must be different: {string.Join(", ", spec.EngineColumns)}");
        }

        return spec;
    }

    private static void CheckSql(string display, string sql, ModelKind kind, ConfigErrors errors)
    {
        if (kind == ModelKind.Clean) { return; }
        var body = SqlText.Blank(sql);
        // The SQL text keeps its place in the file (blank lines stand for the header), so its first line is counted from 1.
        var firstLine = 1 + body.TakeWhile(char.IsWhiteSpace).Count(c => c == '\n');
        if (body.Trim().Length == 0)
        {
            errors.Add(display, firstLine, "(sql)", "the model has no SQL: write one SELECT (or WITH ... SELECT) after the header");
            return;
        }

        var first = SqlText.FirstWord(sql);
        if (first is not ("SELECT" or "WITH"))
        {
            errors.Add(display, firstLine, "(sql)", $"a model is one SELECT or WITH ... SELECT (the engine writes the table); found '{first}'");
        }

        if (SqlText.HasSecondStatement(sql))
        {
            errors.Add(display, firstLine, "(sql)", "a model is a single statement: remove the ';' in the middle");
        }

        foreach (var p in SqlText.Placeholders(sql).Where(p => !KnownPlaceholders.Contains(p)))
        {
            errors.Add(display, firstLine, "(sql)", $"unknown placeholder {{{{ {p} }}}} (known: {string.Join(", ", KnownPlaceholders.Select(k => $"{{{{ {k} }}}}"))})");
        }
    }

    internal static IReadOnlyList<ModelTest> ParseTests(ConfigMap map)
    {
        var tests = new List<ModelTest>();
        foreach (var item in map.MapList("tests"))
        {
            var keys = item.Keys.ToList();
            if (keys.Count != 1)
            {
                item.Error(keys.FirstOrDefault() ?? "(test)", "each test is one of unique, not_null, accepted_values, relationships, row_count");
                foreach (var k in keys) { item.String(k); }
                continue;
            }

            var kind = keys[0];
            var test = kind switch
            {
                "unique" => ColumnsTest(item, kind, ModelTestKind.Unique),
                "not_null" => ColumnsTest(item, kind, ModelTestKind.NotNull),
                "accepted_values" => AcceptedValues(item),
                "relationships" => Relationships(item),
                "row_count" => RowCount(item),
                _ => null,
            };
            if (test is null && kind is not ("unique" or "not_null" or "accepted_values" or "relationships" or "row_count"))
            {
                item.String(kind);
                item.Error(kind, "unknown test (known: unique, not_null, accepted_values, relationships, row_count)");
            }

            item.Done();
            if (test is not null) { tests.Add(test); }
        }

        return tests;
    }

    private static ModelTest? ColumnsTest(ConfigMap item, string key, ModelTestKind kind)
    {
        IReadOnlyList<string> columns;
        string? where = null;
        if (item.IsMapping(key))
        {
            var m = item.Map(key)!;
            columns = m.StringList("columns");
            where = m.String("where");
            m.Done();
        }
        else
        {
            columns = item.StringList(key);
        }

        if (columns.Count == 0 || columns.Any(c => !SqlText.IsIdentifier(c)))
        {
            item.Error(key, "name the column(s): a column, a list, or {columns: [...], where: ...}");
            return null;
        }

        return new ModelTest(kind, columns, item.Line) { Where = where };
    }

    private static ModelTest? AcceptedValues(ConfigMap item)
    {
        var m = item.Map("accepted_values", required: true);
        if (m is null) { return null; }
        var column = m.RequiredString("column");
        var values = m.StringList("values");
        var where = m.String("where");
        m.Done();
        if (values.Count == 0) { m.Error("values", "list the accepted values"); return null; }
        return column.Length == 0 ? null : new ModelTest(ModelTestKind.AcceptedValues, [column], item.Line) { Values = values, Where = where };
    }

    private static ModelTest? Relationships(ConfigMap item)
    {
        var m = item.Map("relationships", required: true);
        if (m is null) { return null; }
        var column = m.RequiredString("column");
        var to = m.RequiredString("to");
        var where = m.String("where");
        m.Done();
        var match = RelationColumn().Match(to);
        if (!match.Success)
        {
            if (to.Length > 0) { m.Error("to", $"'{to}' must be schema.table.column (for example dw.dim_customer.customer_key)"); }
            return null;
        }

        return column.Length == 0 ? null : new ModelTest(ModelTestKind.Relationships, [column], item.Line)
        {
            ToRelation = match.Groups[1].Value.ToLowerInvariant(), ToColumn = match.Groups[2].Value, Where = where,
        };
    }

    private static ModelTest? RowCount(ConfigMap item)
    {
        var m = item.Map("row_count", required: true);
        if (m is null) { return null; }
        long? min = m.Has("min") ? m.Int("min", 0, 0) : null;
        long? max = m.Has("max") ? m.Int("max", 0, 0) : null;
        var where = m.String("where");
        m.Done();
        if (min is null && max is null) { m.Error("min", "give min, max or both"); return null; }
        return new ModelTest(ModelTestKind.RowCount, [], item.Line) { Min = min, Max = max, Where = where };
    }

    private static CleanSpec? ParseCleanSpec(ConfigMap map)
    {
        var before = map.Errors.All.Count;
        var source = map.RequiredString("source").ToLowerInvariant();
        if (source.Length > 0 && !RelationName().IsMatch(source)) { map.Error("source", $"'{source}' must be schema.table (for example raw.customer)"); }
        var columns = new List<CleanColumn>();
        var columnsMap = map.Map("columns", required: true);
        if (columnsMap is not null)
        {
            foreach (var name in columnsMap.Keys.ToList())
            {
                var c = columnsMap.Map(name);
                if (c is null) { continue; }
                if (!SqlText.IsIdentifier(name) || name.StartsWith('_')) { columnsMap.Error(name, "must be a plain column name (letters, digits, '_'; not starting with '_', kept for the engine)"); }
                var column = ParseColumn(name, c);
                c.Done();
                if (column is not null) { columns.Add(column); }
            }

            columnsMap.Done();
            if (columns.Count == 0 && columnsMap.Keys.Any() is false) { map.Error("columns", "declare at least one column"); }
        }

        string[] reserved = [CleanSpec.FileDateOutput, CleanSpec.SourceFileOutput, CleanSpec.SourceRowOutput];
        foreach (var c in columns.Where(c => reserved.Contains(c.Name, StringComparer.OrdinalIgnoreCase)))
        {
            map.Error("columns", $"'{c.Name}' is reserved: every clean model adds {string.Join(", ", reserved)}");
        }

        var invalidText = map.Has("invalid_text") ? map.String("invalid_text") : "invalid_encoding";
        var spec = new CleanSpec(source, columns)
        {
            DateColumn = Column(map, "date_column", "_file_date"),
            FileColumn = Column(map, "file_column", "_file"),
            RowColumn = Column(map, "row_column", "_row"),
            LoadedAtColumn = Column(map, "loaded_at_column", "_loaded_at"),
            SameDateFiles = map.Enum("same_date_files", SameDateFiles.Latest),
            InvalidTextReason = invalidText is null or "" or "false" ? null : Reason(map, "invalid_text", invalidText),
            DuplicateReason = map.String("duplicates") is { } dup ? Reason(map, "duplicates", dup) : null,
            Key = ParseKey(map, columns),
            Checks = map.MapList("checks").Select(ParseCheck).OfType<CheckRule>().ToList(),
            Lookups = map.MapList("lookups").Select(m => ParseLookup(m, columns)).OfType<LookupRule>().ToList(),
        };
        return map.Errors.All.Count > before ? null : spec;
    }

    private static CleanColumn? ParseColumn(string name, ConfigMap c)
    {
        var before = c.Errors.All.Count;
        var from = c.RequiredString("from");
        var typeText = (c.String("type", "text") ?? "text").Trim().ToLowerInvariant();
        var type = CleanType.Text;
        int precision = 18, scale = 2;
        var decimalMatch = DecimalType().Match(typeText);
        if (decimalMatch.Success)
        {
            type = CleanType.Decimal;
            if (decimalMatch.Groups[1].Success)
            {
                precision = int.Parse(decimalMatch.Groups[1].Value, CultureInfo.InvariantCulture);
                scale = int.Parse(decimalMatch.Groups[2].Value, CultureInfo.InvariantCulture);
                if (precision is < 1 or > 38 || scale < 0 || scale > precision) { c.Error("type", $"decimal({precision},{scale}): precision 1..38, scale 0..precision"); }
            }
        }
        else
        {
            switch (typeText)
            {
                case "text" or "string" or "varchar": type = CleanType.Text; break;
                case "integer" or "int" or "bigint": type = CleanType.Integer; break;
                case "date": type = CleanType.Date; break;
                case "boolean" or "bool": type = CleanType.Boolean; break;
                default: c.Error("type", $"unknown type '{typeText}' (expected text, integer, decimal, decimal(p,s), date or boolean)"); break;
            }
        }

        var rules = new List<TextRule>();
        foreach (var r in c.StringList("clean"))
        {
            if (Enum.TryParse<TextRule>(r.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var rule) && !int.TryParse(r, out _)) { rules.Add(rule); }
            else { c.Error("clean", $"unknown rule '{r}' (known: trim, strip_control, collapse_whitespace, lower, upper, title_case)"); }
        }

        var required = c.String("required");
        var formats = c.Has("formats") ? c.StringList("formats") : ["yyyy-MM-dd"];
        foreach (var f in formats.Where(f => DateFormat.TryParse(f) is null))
        {
            c.Error("formats", $"'{f}' is not a supported date format (three parts yyyy, MM or M, dd or d, with one separator between them, or none: yyyy-MM-dd, dd/MM/yyyy, MM/dd/yyyy, dd.MM.yyyy, yyyyMMdd)");
        }

        if (c.Has("formats") && type != CleanType.Date) { c.Error("formats", "only applies to type date"); }
        var thousands = c.String("thousands", ",") ?? ",";
        var separator = c.String("decimal", ".") ?? ".";
        if (type != CleanType.Decimal && (c.Has("thousands") || c.Has("decimal"))) { c.Error(c.Has("thousands") ? "thousands" : "decimal", "only applies to type decimal (integers are digits with an optional sign)"); }
        if (separator.Length != 1 || thousands.Length > 1 || thousands == separator || char.IsAsciiDigit(separator[0]) || (thousands.Length == 1 && char.IsAsciiDigit(thousands[0])))
        {
            c.Error("decimal", "decimal is one character and thousands one character or empty, different and not digits");
        }

        var column = new CleanColumn(name, from, type, c.Line)
        {
            Clean = rules,
            RequiredReason = required is null or "false" ? null : required == "true" ? $"missing_{name}" : Reason(c, "required", required),
            InvalidReason = Reason(c, "invalid", c.String("invalid") ?? $"invalid_{name}"),
            Precision = precision, Scale = scale, Thousands = thousands, DecimalSeparator = separator, Formats = formats,
            Min = ParseBound(c, "min", name, type),
            Max = ParseBound(c, "max", name, type),
        };
        return c.Errors.All.Count > before ? null : column;
    }

    private static Bound? ParseBound(ConfigMap c, string key, string column, CleanType type)
    {
        if (!c.Has(key)) { return null; }
        string? value;
        string reason;
        if (c.IsMapping(key))
        {
            var m = c.Map(key)!;
            value = m.RequiredString("value");
            reason = Reason(m, "reason", m.String("reason") ?? $"{(key == "min" ? "below_min" : "above_max")}_{column}");
            m.Done();
        }
        else
        {
            value = c.String(key);
            reason = $"{(key == "min" ? "below_min" : "above_max")}_{column}";
        }

        var ok = type switch
        {
            CleanType.Integer => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _),
            CleanType.Decimal => decimal.TryParse(value, NumberStyles.Number, CultureInfo.InvariantCulture, out _),
            CleanType.Date => DateOnly.TryParseExact(value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _),
            _ => false,
        };
        if (!ok)
        {
            c.Error(key, type is CleanType.Integer or CleanType.Decimal or CleanType.Date
                ? $"'{value}' is not a {type.ToString().ToLowerInvariant()} (dates as yyyy-MM-dd)"
                : $"only applies to integer, decimal and date columns");
            return null;
        }

        return new Bound(value!, reason);
    }

    private static KeyRule? ParseKey(ConfigMap map, List<CleanColumn> columns)
    {
        var m = map.Map("key");
        if (m is null) { return null; }
        var keyColumns = m.StringList("columns");
        var keep = m.String("keep", "last");
        var reason = Reason(m, "reason", m.String("reason") ?? "duplicate_key");
        m.Done();
        if (keep is not ("first" or "last")) { m.Error("keep", $"expected first or last, got '{keep}'"); }
        foreach (var k in keyColumns.Where(k => columns.All(c => c.Name != k))) { m.Error("columns", $"'{k}' is not one of the columns"); }
        if (keyColumns.Count == 0) { m.Error("columns", "name the key column(s)"); }
        return new KeyRule(keyColumns, keep != "first", reason);
    }

    private static CheckRule? ParseCheck(ConfigMap m)
    {
        var reason = Reason(m, "reason", m.RequiredString("reason"));
        var when = m.RequiredString("when");
        m.Done();
        if (when.Length > 0 && SqlText.HasSecondStatement(when)) { m.Error("when", "a condition, not statements"); }
        return when.Length == 0 ? null : new CheckRule(reason, when);
    }

    private static LookupRule? ParseLookup(ConfigMap m, List<CleanColumn> columns)
    {
        var column = m.RequiredString("column");
        var to = m.RequiredString("in");
        var reason = Reason(m, "reason", m.String("reason") ?? $"unknown_{column}");
        m.Done();
        if (column.Length > 0 && columns.All(c => c.Name != column)) { m.Error("column", $"'{column}' is not one of the columns"); }
        var match = RelationColumn().Match(to);
        if (!match.Success)
        {
            if (to.Length > 0) { m.Error("in", $"'{to}' must be schema.table.column (for example dw.dim_customer.customer_id)"); }
            return null;
        }

        return new LookupRule(column, match.Groups[1].Value.ToLowerInvariant(), match.Groups[2].Value, reason);
    }

    private static string Column(ConfigMap map, string key, string fallback)
    {
        var value = map.String(key, fallback) ?? fallback;
        if (!SqlText.IsIdentifier(value)) { map.Error(key, $"'{value}' is not a plain column name"); }
        return value;
    }

    private static string Reason(ConfigMap map, string key, string value)
    {
        if (!ReasonCode().IsMatch(value)) { map.Error(key, $"'{value}' is not a reason code (lower case letters, digits and '_', starting with a letter)"); }
        return value;
    }

    private static string Display(string path) => Path.GetRelativePath(Directory.GetCurrentDirectory(), path);

    [GeneratedRegex(@"^([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$", RegexOptions.CultureInvariant)]
    private static partial Regex RelationColumn();

    [GeneratedRegex(@"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex RelationName();

    [GeneratedRegex(@"^(?:decimal|numeric)(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?$", RegexOptions.CultureInvariant)]
    private static partial Regex DecimalType();

    [GeneratedRegex(@"^[a-z][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ReasonCode();
}
