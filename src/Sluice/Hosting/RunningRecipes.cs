using System.Collections.Concurrent;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// The recipes this process runs now (one for <c>run</c>, several for <c>demo</c>), so the one management endpoint can
/// reach each host's operations whichever host started the server. A host registers while it runs.
/// </summary>
public sealed class RunningRecipes
{
    private readonly ConcurrentDictionary<string, RecipeOperations> _hosts = new(StringComparer.Ordinal);

    public IReadOnlyList<RecipeOperations> All => _hosts.Values.OrderBy(h => h.Recipe.Name, StringComparer.Ordinal).ToList();

    public RecipeOperations? Find(string recipe) => _hosts.GetValueOrDefault(recipe);

    public IDisposable Register(RecipeOperations operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        _hosts[operations.Recipe.Name] = operations;
        return new Registration(this, operations);
    }

    private sealed class Registration(RunningRecipes owner, RecipeOperations operations) : IDisposable
    {
        public void Dispose() => owner._hosts.TryRemove(new KeyValuePair<string, RecipeOperations>(operations.Recipe.Name, operations));
    }
}
