using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Transforms.Sql;

namespace Sluice.Transforms.Map;

/// <summary>The <c>map</c> step type.</summary>
public sealed class MapStepType : IStepType
{
    public string Name => "map";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(MapOptions.Parse(options, recipe));

    private sealed class Factory(MapOptions options) : IStepFactory, IShapesBatches
    {
        public BatchShape Shape(BatchShape input, ShapeProblems problems) => options.Shape(input, problems);

        public IBatchStep Create(IEngineServices services) => new MapStep(options, StepLetters.For(services, options.LetterSource));
    }
}

/// <summary>
/// Renames, casts, derives and drops columns of the selected tables. Casts and derived columns are DuckDB SQL over the
/// batch (<see cref="BatchSql"/>); a row whose cast or expression fails (a value that is not a number, a missing
/// column) is dead-lettered with DuckDB's reason and the other rows go on.
/// </summary>
public sealed class MapStep : IBatchStep, IDisposable
{
    private readonly MapOptions _options;
    private readonly StepLetters _letters;
    private readonly BatchSql? _sql;
    private readonly int[] _select;

    public MapStep(MapOptions options, StepLetters letters)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _letters = letters;
        var expressions = options.Cast.Select(c => $"CAST({SqlExpression.Quote(c.Column)} AS {CastType(c.Type)})").Concat(options.Derive.Select(d => d.Sql)).ToList();
        _select = Enumerable.Range(0, expressions.Count).ToArray();
        _sql = expressions.Count == 0 ? null : new BatchSql(expressions);
    }

    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return ValueTask.FromResult(batch with { Tables = batch.Tables.Select(t => _options.Tables.Takes(t) ? Apply(t, batch.Position) : t).ToList() });
    }

    public ColumnBatch Apply(ColumnBatch table, long position)
    {
        ArgumentNullException.ThrowIfNull(table);
        var renamed = new TableEdit(table);
        foreach (var (from, to) in _options.Rename)
        {
            if (renamed.IndexOf(from) is var at and >= 0) { renamed.Rename(at, to); }
        }

        var edit = renamed;
        if (_sql is not null)
        {
            var input = renamed.Build();
            _sql.Load(input);
            var result = _sql.Evaluate(_select, null, input.Count);
            _letters.Add(input, position, result.Failed);
            edit = new TableEdit(result.Failed.Count == 0 ? input : input.Gather(result.Rows.ToArray()));
            for (var c = 0; c < _options.Cast.Count; c++)
            {
                // A cast keeps the asked type even when DuckDB answers in a wider one (an INTEGER cast reads as BIGINT).
                edit.Set(_options.Cast[c].Column, _options.Cast[c].Type, result.Columns[c]);
            }

            for (var d = 0; d < _options.Derive.Count; d++)
            {
                var i = _options.Cast.Count + d;
                edit.Set(_options.Derive[d].Column, result.Types[i], result.Columns[i]);
            }
        }

        foreach (var name in _options.Drop)
        {
            if (edit.IndexOf(name) is var at and >= 0) { edit.Remove(at); }
        }

        return edit.Build();
    }

    private static string CastType(FieldType type) => type switch
    {
        FieldType.Integer => "BIGINT",
        FieldType.Double => "DOUBLE",
        FieldType.Boolean => "BOOLEAN",
        FieldType.Timestamp => "TIMESTAMPTZ",
        FieldType.Date => "DATE",
        _ => "VARCHAR",
    };

    public void Dispose() => _sql?.Dispose();
}
