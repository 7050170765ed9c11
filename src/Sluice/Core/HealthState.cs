using System.Collections.Concurrent;

namespace Sluice.Core;

/// <summary>
/// What is failing in this process, by component, with the reason: components report a condition they cannot serve
/// through, the recipe host reports a component that failed, and <c>/healthz</c> answers 503 with these reasons while
/// any is present. One per process (<see cref="Recipes.IEngineServices.Health"/>).
/// </summary>
public sealed class HealthState
{
    private readonly ConcurrentDictionary<string, string> _failures = new(StringComparer.Ordinal);

    public bool Healthy => _failures.IsEmpty;

    /// <summary>Each failing component and why, ordered by component.</summary>
    public IReadOnlyList<(string Component, string Reason)> Failures =>
        _failures.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => (f.Key, f.Value)).ToList();

    public void Fail(string component, string reason) => _failures[component] = reason;

    /// <summary>The component recovered (or was restarted).</summary>
    public void Clear(string component) => _failures.TryRemove(component, out _);
}
