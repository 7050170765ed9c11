using System.Collections.Concurrent;

namespace Sluice.Core;

/// <summary>
/// What is failing in this process, by component, with the reason: components report a condition they cannot serve
/// through, the recipe host reports a component that failed, and <c>/healthz</c> answers 503 with these reasons while
/// any is present. A component that still works but needs attention soon (a replication slot falling behind) reports
/// itself degraded instead: <c>/healthz</c> keeps answering 200, with status <c>degraded</c> and the reasons.
/// One per process (<see cref="Recipes.IEngineServices.Health"/>).
/// </summary>
public sealed class HealthState
{
    private readonly ConcurrentDictionary<string, string> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _degraded = new(StringComparer.Ordinal);

    public bool Healthy => _failures.IsEmpty;

    /// <summary>Each failing component and why, ordered by component.</summary>
    public IReadOnlyList<(string Component, string Reason)> Failures => Sorted(_failures);

    /// <summary>Each degraded component (working, but heading for a failure) and why, ordered by component.</summary>
    public IReadOnlyList<(string Component, string Reason)> Degraded => Sorted(_degraded);

    public void Fail(string component, string reason) => _failures[component] = reason;

    public void Degrade(string component, string reason) => _degraded[component] = reason;

    /// <summary>The component's state in one call: failing when <paramref name="failure"/> is set, else degraded when <paramref name="degraded"/> is, else fine.</summary>
    public void Report(string component, string? failure, string? degraded)
    {
        if (failure is null) { _failures.TryRemove(component, out _); } else { _failures[component] = failure; }
        if (degraded is null || failure is not null) { _degraded.TryRemove(component, out _); } else { _degraded[component] = degraded; }
    }

    /// <summary>The component recovered (or was restarted): neither failing nor degraded.</summary>
    public void Clear(string component)
    {
        _failures.TryRemove(component, out _);
        _degraded.TryRemove(component, out _);
    }

    private static List<(string, string)> Sorted(ConcurrentDictionary<string, string> map) =>
        map.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => (f.Key, f.Value)).ToList();
}
