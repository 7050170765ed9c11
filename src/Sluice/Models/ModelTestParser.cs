using Sluice.Core.Config;

namespace Sluice.Models;

/// <summary>Reads a model's <c>tests:</c> list (docs/reference/models.md): each entry is one test, named by its key.</summary>
internal static class ModelTestParser
{
    private static readonly string[] Kinds = ["unique", "not_null", "accepted_values", "relationships", "row_count"];

    private const string WhereDoc = "A condition (SQL) limiting the rows the test looks at.";

    public static IReadOnlyList<ModelTest> Parse(ConfigMap map)
    {
        var tests = new List<ModelTest>();
        foreach (var item in map.MapList("tests", doc: "Data tests run after each run of the model (sluice models test); each entry is one of the keys below."))
        {
            // A description takes every kind of test, so the reference shows each one's keys.
            var keys = item.Describing ? Kinds.ToList() : item.Keys.ToList();
            if (!item.Describing && keys.Count != 1)
            {
                item.Error(keys.FirstOrDefault() ?? "(test)", "each test is one of unique, not_null, accepted_values, relationships, row_count");
                foreach (var k in keys) { item.String(k); }
                continue;
            }

            foreach (var kind in keys)
            {
                var test = kind switch
                {
                    "unique" => Columns(item, kind, ModelTestKind.Unique, "No two rows have the same value(s): a column, a list, or {columns: [...], where: ...}."),
                    "not_null" => Columns(item, kind, ModelTestKind.NotNull, "The column(s) hold no NULL: a column, a list, or {columns: [...], where: ...}."),
                    "accepted_values" => AcceptedValues(item),
                    "relationships" => Relationships(item),
                    "row_count" => RowCount(item),
                    _ => null,
                };
                if (!Kinds.Contains(kind))
                {
                    item.String(kind);
                    item.Error(kind, "unknown test (known: unique, not_null, accepted_values, relationships, row_count)");
                }

                if (test is not null) { tests.Add(test); }
            }

            item.Done();
        }

        return tests;
    }

    private static ModelTest? Columns(ConfigMap item, string key, ModelTestKind kind, string doc)
    {
        IReadOnlyList<string> columns;
        string? where = null;
        if (item.IsMapping(key) || item.Describing)
        {
            var m = item.Map(key, doc: doc)!;
            columns = m.StringList("columns", doc: "The column(s) tested.");
            where = m.String("where", doc: WhereDoc);
            m.Done();
        }
        else
        {
            columns = item.StringList(key, doc: doc);
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
        var m = item.Map("accepted_values", required: !item.Describing, doc: "The column holds only the listed values.");
        if (m is null) { return null; }
        var column = m.RequiredString("column", doc: "The column tested.");
        var values = m.StringList("values", doc: "The accepted values.");
        var where = m.String("where", doc: WhereDoc);
        m.Done();
        if (values.Count == 0) { m.Error("values", "list the accepted values"); return null; }
        return column.Length == 0 ? null : new ModelTest(ModelTestKind.AcceptedValues, [column], item.Line) { Values = values, Where = where };
    }

    private static ModelTest? Relationships(ConfigMap item)
    {
        var m = item.Map("relationships", required: !item.Describing, doc: "Every value of the column exists in another relation's column.");
        if (m is null) { return null; }
        var column = m.RequiredString("column", doc: "The column tested.");
        var to = m.RequiredString("to", doc: "The column it must exist in, as schema.table.column (dw.dim_customer.customer_key).");
        var where = m.String("where", doc: WhereDoc);
        m.Done();
        var match = ModelFileChecks.RelationColumn().Match(to);
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
        var m = item.Map("row_count", required: !item.Describing, doc: "The number of rows is within min and max (give one or both).");
        if (m is null) { return null; }
        // Neither bound has a default: a row_count test gives min, max or both.
        m.Declare("min", "whole number", null, "Fewest rows.", "at least 0");
        m.Declare("max", "whole number", null, "Most rows.", "at least 0");
        long? min = m.Has("min") || m.Describing ? m.Int("min", 0, 0) : null;
        long? max = m.Has("max") || m.Describing ? m.Int("max", 0, 0) : null;
        var where = m.String("where", doc: WhereDoc);
        m.Done();
        if (min is null && max is null) { m.Error("min", "give min, max or both"); return null; }
        return new ModelTest(ModelTestKind.RowCount, [], item.Line) { Min = min, Max = max, Where = where };
    }
}
