using static Sluice.Models.SqlDialect;

namespace Sluice.Models;

/// <summary>
/// Runs the declared tests of models on a warehouse. Each test is a query for the offending rows (for unique, the
/// duplicated keys with their count); the outcome counts them and keeps a few as examples, so a failure names the
/// model, the column and what is wrong with which rows.
/// </summary>
public static class ModelTester
{
    public const int Examples = 5;

    public static async Task<IReadOnlyList<ModelTestOutcome>> RunAsync(IWarehouse warehouse, IEnumerable<ModelDefinition> models, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(warehouse);
        ArgumentNullException.ThrowIfNull(models);
        var outcomes = new List<ModelTestOutcome>();
        foreach (var model in models)
        {
            foreach (var test in model.Tests)
            {
                outcomes.Add(await RunAsync(warehouse, model, test, ct).ConfigureAwait(false));
            }
        }

        return outcomes;
    }

    public static async Task<ModelTestOutcome> RunAsync(IWarehouse warehouse, ModelDefinition model, ModelTest test, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(warehouse);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(test);
        var offending = Offending(warehouse.Dialect, model.Name, test);
        try
        {
            if (test.Kind == ModelTestKind.RowCount)
            {
                var result = await warehouse.QueryAsync(offending, 1, ct).ConfigureAwait(false);
                var n = Convert.ToInt64(result.Rows[0][0], System.Globalization.CultureInfo.InvariantCulture);
                var bad = (test.Min is { } min && n < min) || (test.Max is { } max && n > max);
                return new ModelTestOutcome(model, test, bad ? 1 : 0, result);
            }

            var count = await warehouse.QueryAsync($"SELECT count(*) FROM ({offending}) x", 1, ct).ConfigureAwait(false);
            var failures = Convert.ToInt64(count.Rows[0][0], System.Globalization.CultureInfo.InvariantCulture);
            var examples = failures == 0 ? new Lake.QueryResult([], []) : await warehouse.QueryAsync($"{offending} LIMIT {Examples}", Examples, ct).ConfigureAwait(false);
            return new ModelTestOutcome(model, test, failures, examples);
        }
        catch (Core.SluiceException e)
        {
            return new ModelTestOutcome(model, test, 0, new Lake.QueryResult([], []), e.Message);
        }
    }

    /// <summary>The query returning the rows (or groups) that break the test; for row_count, the count itself.</summary>
    public static string Offending(SqlDialect dialect, string relation, ModelTest test)
    {
        ArgumentNullException.ThrowIfNull(dialect);
        ArgumentNullException.ThrowIfNull(test);
        var t = QuoteName(relation);
        var where = test.Where is null ? "" : $" AND ({dialect.Translate(test.Where)})";
        var cols = string.Join(", ", test.Columns.Select(Quote));
        return test.Kind switch
        {
            ModelTestKind.Unique => $"SELECT {cols}, count(*) AS rows_with_this_value FROM {t} WHERE TRUE{where} GROUP BY {cols} HAVING count(*) > 1 ORDER BY {cols}",
            ModelTestKind.NotNull => $"SELECT * FROM {t} WHERE ({string.Join(" OR ", test.Columns.Select(c => $"{Quote(c)} IS NULL"))}){where}",
            ModelTestKind.AcceptedValues =>
                $"SELECT {cols}, count(*) AS rows_with_this_value FROM {t} WHERE {cols} IS NOT NULL AND CAST({cols} AS VARCHAR) NOT IN ({string.Join(", ", test.Values.Select(Literal))}){where} GROUP BY {cols} ORDER BY {cols}",
            ModelTestKind.Relationships =>
                $"SELECT t.{cols}, count(*) AS rows_with_this_value FROM {t} t LEFT JOIN (SELECT DISTINCT {Quote(test.ToColumn!)} AS v FROM {QuoteName(test.ToRelation!)}) r ON r.v = t.{cols} " +
                $"WHERE t.{cols} IS NOT NULL AND r.v IS NULL{where} GROUP BY t.{cols} ORDER BY t.{cols}",
            ModelTestKind.RowCount => $"SELECT count(*) AS row_count FROM {t} WHERE TRUE{where}",
            _ => throw new ArgumentOutOfRangeException(nameof(test)),
        };
    }
}
