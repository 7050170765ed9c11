using Sluice.Core.Recipes;

namespace Sluice.Cli.Commands;

/// <summary><c>validate --connect</c>: every component that has a server is asked about it, all at once; every problem is one line naming the recipe, the component and the key.</summary>
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
        return (done.Length, problems);
    }
}
