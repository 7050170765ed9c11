using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;

namespace Sluice.Cli.Commands;

/// <summary>
/// <c>validate --connect</c>: every component that has a server is asked about it, all at once; every problem is one line
/// naming the recipe, the component and the key. A source whose tables' columns only its server knows (CDC) is asked for
/// them, and its pipeline's steps and sinks are checked against them (<see cref="PipelineShapeCheck"/>).
/// </summary>
internal static class ConnectionChecks
{
    public static async Task<(int Checked, List<string> Problems)> RunAsync(Recipe recipe, CancellationToken ct)
    {
        var checks = recipe.Pipelines.SelectMany(p => p.Components())
            .Where(c => c.Factory is IConnectionCheck)
            .Select(async c => (c.Place, Problems: await ((IConnectionCheck)c.Factory).CheckConnectionAsync(ct).ConfigureAwait(false)))
            .ToList();
        var done = await Task.WhenAll(checks).ConfigureAwait(false);
        var problems = done.SelectMany(d => d.Problems.Select(p => $"{recipe.Name}: {d.Place}: {p}")).ToList();
        problems.AddRange(await ColumnProblemsAsync(recipe, ct).ConfigureAwait(false));
        return (done.Length, problems);
    }

    /// <summary>The pipelines whose source reads its columns from its server, checked again with them (file:line: key: what).</summary>
    private static async Task<List<string>> ColumnProblemsAsync(Recipe recipe, CancellationToken ct)
    {
        var errors = new ConfigErrors();
        foreach (var pipeline in recipe.Pipelines.Where(p => p.Shapes is not null && p.Source is IConnectedBatchTables))
        {
            // A server that does not answer is reported by the source's own connection check.
            if (await ((IConnectedBatchTables)pipeline.Source).ReadBatchTablesAsync(ct).ConfigureAwait(false) is { } tables)
            {
                pipeline.Shapes!.Run(BatchShape.Of(tables), errors);
            }
        }

        return errors.All.Select(e => e.ToString()).ToList();
    }
}
