using Sluice.Core.Pipeline;
using Sluice.Transforms.Sql;

namespace Sluice.Transforms;

/// <summary>
/// How a generic step checks at load the columns it names (<see cref="PipelineShapeCheck"/>), by what the step does
/// with a table that lacks one: <see cref="Need"/> where each row of it would fail (a filter's condition, a dedup key),
/// <see cref="Use"/> where the step passes such a table over (a rename, a hashed field), so the column is a mistake
/// only when no table the step applies to has it.
/// </summary>
internal sealed class ColumnUse(ShapeProblems problems, string step)
{
    private readonly Dictionary<(string Key, string Column), (int Tables, int Missing, string? First)> _used = [];

    public ShapeProblems Problems => problems;

    /// <summary>A column each row of <paramref name="table"/> needs.</summary>
    public void Need(ShapeTable table, string key, string column) => problems.Add(key, step, table.Missing(column));

    /// <summary>The columns a DuckDB SQL expression reads (found without regard to case, as DuckDB does).</summary>
    public void NeedSql(ShapeTable table, string key, string sql)
    {
        foreach (var names in SqlExpression.Columns(sql) ?? [])
        {
            // `a.b` is a struct's field or a qualified column: either name being a column is enough.
            if (names.Any(n => table.Find(n, ignoreCase: true) is not null)) { continue; }
            problems.Add(key, step, table.Missing(names[0], ignoreCase: true));
        }
    }

    /// <summary>A column the step uses where the table has it; true when it is (or may be) there.</summary>
    public bool Use(ShapeTable table, string key, string column)
    {
        var why = table.Missing(column);
        var (tables, missing, first) = _used.GetValueOrDefault((key, column));
        _used[(key, column)] = (tables + 1, missing + (why is null ? 0 : 1), first ?? why);
        return why is null;
    }

    /// <summary>Reports each used column no table had.</summary>
    public void Done()
    {
        foreach (var ((key, _), (tables, missing, first)) in _used.Where(u => u.Value.Tables > 0 && u.Value.Missing == u.Value.Tables))
        {
            problems.Add(key, step, tables == 1 ? first : $"no table it applies to has it ({first})");
        }
    }
}
