using Sluice.Core.Config;

namespace Sluice.Models.Rules;

/// <summary>Reads a clean model's rules (models/&lt;schema&gt;/&lt;name&gt;.yaml; docs/reference/models.md); defaults are <see cref="CleanSpec"/>'s initialisers.</summary>
public static class CleanSpecParser
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference shows them.</summary>
    private static readonly CleanSpec Default = OptionDefaults.Of<CleanSpec>();

    public static CleanSpec? Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var before = map.Errors.All.Count;
        var source = map.RequiredString("source", doc: "The raw (all-text) table the rules read, as schema.table (raw.customer).").ToLowerInvariant();
        if (source.Length > 0 && !ModelFileChecks.RelationName().IsMatch(source)) { map.Error("source", $"'{source}' must be schema.table (for example raw.customer)"); }
        var columns = Columns(map);
        string[] reserved = [CleanSpec.FileDateOutput, CleanSpec.SourceFileOutput, CleanSpec.SourceRowOutput];
        foreach (var c in columns.Where(c => reserved.Contains(c.Name, StringComparer.OrdinalIgnoreCase)))
        {
            map.Error("columns", $"'{c.Name}' is reserved: every clean model adds {string.Join(", ", reserved)}");
        }

        var invalidText = map.String("invalid_text", Default.InvalidTextReason, doc: "Reason code of rows holding text that was not valid UTF-8; false lets such rows through.");
        var spec = new CleanSpec
        {
            Source = source,
            Columns = columns,
            DateColumn = Column(map, "date_column", Default.DateColumn, "The raw table's column holding the date of the file a row came from."),
            FileColumn = Column(map, "file_column", Default.FileColumn, "The raw table's column holding the file a row came from."),
            RowColumn = Column(map, "row_column", Default.RowColumn, "The raw table's column holding the row's number in its file."),
            LoadedAtColumn = Column(map, "loaded_at_column", Default.LoadedAtColumn, "The raw table's column holding when the row was loaded."),
            SameDateFiles = map.Enum("same_date_files", Default.SameDateFiles, doc: "Several files for one date: only the rows of the file loaded last (a corrected export replaces the earlier one), or every file's rows."),
            InvalidTextReason = invalidText is null or "" or "false" ? null : ModelFileChecks.Reason(map, "invalid_text", invalidText),
            DuplicateReason = map.String("duplicates", doc: "Reason code of exact duplicates (the same raw values as an earlier row of the day); duplicates are kept when not given.") is { } dup
                ? ModelFileChecks.Reason(map, "duplicates", dup) : null,
            Key = Key(map, columns),
            Checks = map.MapList("checks", doc: "Conditions that reject a row when true, each with its reason code.").Select(Check).OfType<CheckRule>().ToList(),
            Lookups = map.MapList("lookups", doc: "Values that must exist in another relation (a sale's customer in the customer dimension), each with its reason code.").Select(m => Lookup(m, columns)).OfType<LookupRule>().ToList(),
        };
        return map.Errors.All.Count > before ? null : spec;
    }

    private static List<CleanColumn> Columns(ConfigMap map)
    {
        var columns = new List<CleanColumn>();
        var columnsMap = map.Map("columns", required: true, doc: "The model's columns by name, in order: where each comes from, how it is cleaned, converted and checked.");
        if (columnsMap is null) { return columns; }
        // A description reads one column named <name>, so the reference shows a column's keys.
        foreach (var name in columnsMap.Describing ? ["<name>"] : columnsMap.Keys.ToList())
        {
            var c = columnsMap.Map(name, doc: "One column of the model, named as the model's table names it (not starting with '_').");
            if (c is null) { continue; }
            if (!columnsMap.Describing && (!SqlText.IsIdentifier(name) || name.StartsWith('_'))) { columnsMap.Error(name, "must be a plain column name (letters, digits, '_'; not starting with '_', kept for the engine)"); }
            var column = CleanColumnParser.Parse(c, name);
            c.Done();
            if (column is not null) { columns.Add(column); }
        }

        columnsMap.Done();
        if (columns.Count == 0 && columnsMap.Keys.Any() is false) { map.Error("columns", "declare at least one column"); }
        return columns;
    }

    private static KeyRule? Key(ConfigMap map, List<CleanColumn> columns)
    {
        var m = map.Map("key", doc: "A key: rows of the day with the same key values beyond the one kept are rejected.");
        if (m is null) { return null; }
        var keyColumns = m.StringList("columns", doc: "The key column(s), among the model's columns.");
        var keep = m.String("keep", "last", doc: "Which row of a key is kept: first or last (in file and row order).");
        var reason = ModelFileChecks.Reason(m, "reason", m.String("reason", "duplicate_key", doc: "Reason code of the rejected rows.")!);
        m.Done();
        if (keep is not ("first" or "last")) { m.Error("keep", $"expected first or last, got '{keep}'"); }
        foreach (var k in keyColumns.Where(k => columns.All(c => c.Name != k))) { m.Error("columns", $"'{k}' is not one of the columns"); }
        if (keyColumns.Count == 0) { m.Error("columns", "name the key column(s)"); }
        return new KeyRule(keyColumns, keep != "first", reason);
    }

    private static CheckRule? Check(ConfigMap m)
    {
        var reason = ModelFileChecks.Reason(m, "reason", m.RequiredString("reason", doc: "Reason code of the rows the condition rejects."));
        var when = m.RequiredString("when", doc: "A condition over the cleaned columns (SQL, common subset; file_date is the file's date) that rejects the row when true.");
        m.Done();
        if (when.Length > 0 && SqlText.HasSecondStatement(when)) { m.Error("when", "a condition, not statements"); }
        return when.Length == 0 ? null : new CheckRule(reason, when);
    }

    private static LookupRule? Lookup(ConfigMap m, List<CleanColumn> columns)
    {
        var column = m.RequiredString("column", doc: "The column whose value is looked up, among the model's columns.");
        var to = m.RequiredString("in", doc: "The relation's column the value must exist in, as schema.table.column (dw.dim_customer.customer_id).");
        var reason = ModelFileChecks.Reason(m, "reason", m.String("reason", doc: "Reason code of the rows whose value is not found (default unknown_<column>).") ?? $"unknown_{column}");
        m.Done();
        if (column.Length > 0 && columns.All(c => c.Name != column)) { m.Error("column", $"'{column}' is not one of the columns"); }
        var match = ModelFileChecks.RelationColumn().Match(to);
        if (!match.Success)
        {
            if (to.Length > 0) { m.Error("in", $"'{to}' must be schema.table.column (for example dw.dim_customer.customer_id)"); }
            return null;
        }

        return new LookupRule(column, match.Groups[1].Value.ToLowerInvariant(), match.Groups[2].Value, reason);
    }

    private static string Column(ConfigMap map, string key, string fallback, string doc)
    {
        var value = map.String(key, fallback, doc: doc) ?? fallback;
        if (!SqlText.IsIdentifier(value)) { map.Error(key, $"'{value}' is not a plain column name"); }
        return value;
    }
}
