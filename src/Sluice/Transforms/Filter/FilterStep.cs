using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Transforms.Sql;

namespace Sluice.Transforms.Filter;

/// <summary>Options of the <c>filter</c> step: <c>where</c>, a DuckDB SQL condition over the row's columns, and <c>tables</c>.</summary>
public sealed class FilterOptions
{
    public required TableSelection Tables { get; init; }

    public required string Where { get; init; }

    public required string LetterSource { get; init; }

    public static FilterOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var where = map.RequiredString("where", doc: "A DuckDB SQL condition over the row's columns: rows where it is false or NULL are dropped; a row it cannot be evaluated for is dead-lettered with the reason.");
        if (where.Length > 0 && SqlExpression.Problem(where) is { } problem) { map.Error("where", $"filter: {problem}"); }
        return new FilterOptions { Tables = TableSelection.Parse(map), Where = where, LetterSource = StepLetters.SourceOf(recipe, map, "filter") };
    }
}

/// <summary>The <c>filter</c> step type.</summary>
public sealed class FilterStepType : IStepType
{
    public string Name => "filter";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(FilterOptions.Parse(options, recipe));

    private sealed class Factory(FilterOptions options) : IStepFactory, IShapesBatches
    {
        /// <summary>A table the condition names a column it lacks would dead-letter every row.</summary>
        public BatchShape Shape(BatchShape input, ShapeProblems problems)
        {
            options.Tables.Check(input, problems, "filter");
            var use = new ColumnUse(problems, "filter");
            return input.Edit(options.Tables.Tables, table =>
            {
                use.NeedSql(table, "where", options.Where);
                return table;
            });
        }

        public IBatchStep Create(IEngineServices services) => new FilterStep(options, StepLetters.For(services, options.LetterSource));
    }
}

/// <summary>
/// Keeps the rows of the selected tables where <c>where</c> is true; false and NULL drop the row (as SQL's WHERE does).
/// A row the condition cannot be evaluated for (a cast that fails, a missing column) is dead-lettered with the reason.
/// </summary>
public sealed class FilterStep : IBatchStep, IDisposable
{
    private readonly FilterOptions _options;
    private readonly StepLetters _letters;
    private readonly BatchSql _sql;

    public FilterStep(FilterOptions options, StepLetters letters)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _letters = letters;
        _sql = new BatchSql([options.Where]);
    }

    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return ValueTask.FromResult(batch with { Tables = batch.Tables.Select(t => _options.Tables.Takes(t) ? Apply(t, batch.Position) : t).ToList() });
    }

    public ColumnBatch Apply(ColumnBatch table, long position)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Count == 0) { return table; }
        _sql.Load(table);
        var result = _sql.Evaluate([], 0, table.Count);
        _letters.Add(table, position, result.Failed);
        return result.Rows.Count == table.Count ? table : table.Gather(result.Rows.ToArray());
    }

    public void Dispose() => _sql.Dispose();
}
