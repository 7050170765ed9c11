using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Transforms.Sql;

namespace Sluice.Transforms.Map;

/// <summary>
/// Options of the <c>map</c> step, in the order they apply: <c>rename</c> (old: new), <c>cast</c> (column: type), <c>derive</c>
/// (column: DuckDB SQL expression over the row's columns, after the renames and before the casts), <c>drop</c> (columns).
/// </summary>
public sealed class MapOptions
{
    public required TableSelection Tables { get; init; }

    public IReadOnlyList<(string From, string To)> Rename { get; init; } = [];

    public IReadOnlyList<(string Column, FieldType Type)> Cast { get; init; } = [];

    public IReadOnlyList<(string Column, string Sql)> Derive { get; init; } = [];

    public IReadOnlyList<string> Drop { get; init; } = [];

    /// <summary>The dead-letter source of the step's bad rows (<see cref="StepLetters.SourceOf"/>).</summary>
    public required string LetterSource { get; init; }

    public static MapOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var rename = Pairs(map, "rename", "Columns renamed, first: `old: new`.").Select(p => (p.Key, p.Value)).ToList();
        var cast = new List<(string, FieldType)>();
        foreach (var (column, type, at) in Pairs(map, "cast", "Columns converted, after `derive`: `column: type` (string, integer, double, boolean, timestamp or date); a value that does not convert dead-letters its row."))
        {
            if (FieldTypes.TryParse(type, out var parsed)) { cast.Add((column, parsed)); }
            else { at.Error(column, $"map: unknown type '{type}' (expected string, integer, double, boolean, timestamp or date)"); }
        }

        var derive = new List<(string, string)>();
        foreach (var (column, sql, at) in Pairs(map, "derive", "Columns computed, after the renames and before the casts: `column: DuckDB SQL expression` over the row's columns."))
        {
            if (SqlExpression.Problem(sql) is { } problem) { at.Error(column, $"map: {problem}"); }
            derive.Add((column, sql));
        }

        var drop = map.StringList("drop", doc: "Columns removed, last.");
        var tables = TableSelection.Parse(map);
        if (rename.Count + cast.Count + derive.Count + drop.Count == 0)
        {
            map.Error("type", "map: nothing to do; give at least one of rename, cast, derive, drop");
        }

        return new MapOptions { Tables = tables, Rename = rename, Cast = cast, Derive = derive, Drop = drop, LetterSource = StepLetters.SourceOf(recipe, map, "map") };
    }

    /// <summary>
    /// What the step does to the tables at load: renames (a column no table has is a mistake), derived columns (each
    /// expression reads the renamed row), casts (of the renamed row's columns: a derived column is not there yet), drops.
    /// </summary>
    public Core.Pipeline.BatchShape Shape(Core.Pipeline.BatchShape input, Core.Pipeline.ShapeProblems problems)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(problems);
        Tables.Check(input, problems, "map");
        var use = new ColumnUse(problems, "map");
        var shape = input.Edit(Tables.Tables, table =>
        {
            foreach (var (from, to) in Rename.Where(r => use.Use(table, $"rename.{r.From}", r.From)))
            {
                table = table.Renamed(from, to, $"renamed to '{to}' by {problems.Place}");
            }

            foreach (var (column, sql) in Derive) { use.NeedSql(table, $"derive.{column}", sql); }
            foreach (var (column, _) in Cast) { use.Need(table, $"cast.{column}", column); }
            foreach (var (column, _) in Derive) { table = table.With(new Core.Pipeline.ShapeColumn(column, null)); }
            foreach (var (column, type) in Cast) { table = table.With(new Core.Pipeline.ShapeColumn(column, type)); }
            foreach (var column in Drop.Where(d => use.Use(table, "drop", d))) { table = table.Without(column, $"dropped by {problems.Place}"); }
            return table;
        });
        use.Done();
        return shape;
    }

    /// <summary>A mapping of names to text values (<c>rename:</c>, <c>cast:</c>, <c>derive:</c>), in the order written.</summary>
    internal static IEnumerable<(string Key, string Value, ConfigMap Owner)> Pairs(ConfigMap map, string key, string doc)
    {
        var sub = map.Map(key, doc: doc);
        if (sub is null) { yield break; }
        foreach (var name in sub.Keys.ToList())
        {
            var value = sub.String(name);
            if (value is null || value.Length == 0) { sub.Error(name, "expected a text value"); continue; }
            yield return (name, value, sub);
        }
    }
}
