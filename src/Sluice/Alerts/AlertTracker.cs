using System.Collections.Concurrent;
using Sluice.Alerts.Conditions;

namespace Sluice.Alerts;

/// <summary>An alert changed state: it fired or resolved (at most one notice per channel is made of each).</summary>
public sealed record AlertTransition(AlertRule Rule, AlertState Previous, AlertState Current)
{
    public string Event => Current.Firing ? AlertStates.Firing : AlertStates.Resolved;
}

/// <summary>
/// The state of each alert of a recipe, and what changes it. A check that agrees with the state changes nothing but its
/// message, so a condition that stays true notifies once, whatever the number of checks (or restarts, since the states
/// start from what the store kept).
/// </summary>
public sealed class AlertTracker
{
    // Written by the one checking loop, read by status requests at any time.
    private readonly ConcurrentDictionary<string, AlertState> _states;

    public AlertTracker(IReadOnlyDictionary<string, AlertState>? kept = null)
    {
        _states = kept is null ? new(StringComparer.Ordinal) : new(kept, StringComparer.Ordinal);
    }

    /// <summary>When the alert was first checked (or <paramref name="now"/>, for one never checked).</summary>
    public DateTimeOffset WatchedSince(AlertRule rule, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return _states.TryGetValue(rule.Name, out var s) ? s.WatchedSince : now;
    }

    public AlertState? State(string alert) => _states.GetValueOrDefault(alert);

    /// <summary>Takes a check's result; returns the transition when the alert fired or resolved, else null (also for a first check that finds all well).</summary>
    public AlertTransition? Observe(AlertRule rule, AlertCheck check, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (!_states.TryGetValue(rule.Name, out var previous))
        {
            previous = new AlertState(false, now, check.Message, now);
            _states[rule.Name] = previous;
        }

        if (previous.Firing == check.Firing)
        {
            _states[rule.Name] = previous with { Message = check.Message };
            return null;
        }

        var current = new AlertState(check.Firing, now, check.Message, previous.WatchedSince);
        _states[rule.Name] = current;
        return new AlertTransition(rule, previous, current);
    }
}
