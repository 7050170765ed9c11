using System.Globalization;

namespace Sluice.Alerts.Conditions;

/// <summary>What one check of an alert found: whether it fires, and a sentence saying why (shown and sent as it is).</summary>
public readonly record struct AlertCheck(bool Firing, string Message);

/// <summary>
/// One kind of alert condition, with its options already validated. A check reads only figures (<see cref="IAlertFacts"/>)
/// and the time, so each kind can be tested with a fake clock and made-up figures.
/// </summary>
public abstract class AlertCondition
{
    /// <summary>The name the recipe uses for this kind (<c>freshness</c>, <c>lag</c>, ...).</summary>
    public abstract string Kind { get; }

    /// <summary>What the condition looks at, for status lines (<c>table raw.events</c>, <c>pipeline r/p</c>).</summary>
    public abstract string Subject { get; }

    /// <param name="watchedSince">When this alert was first evaluated on this data folder (kept across restarts): a
    /// table that never had data, or a schedule that never ran, counts from then, so a new alert does not fire at once.</param>
    public abstract AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince);

    /// <summary>A span as people write it: a round one as it was configured (1 h, 30 min), others to the nearest unit.</summary>
    protected static string Ago(TimeSpan span) =>
        span >= TimeSpan.FromDays(1) && span.Ticks % TimeSpan.TicksPerDay == 0 ? $"{span.TotalDays:0} d"
        : span >= TimeSpan.FromHours(1) && span.Ticks % TimeSpan.TicksPerHour == 0 ? $"{span.TotalHours:0} h"
        : span.TotalSeconds < 90 ? $"{span.TotalSeconds:0} s"
        : span.TotalMinutes < 90 ? $"{span.TotalMinutes:0} min"
        : span.TotalHours < 48 ? $"{span.TotalHours:0.#} h" : $"{span.TotalDays:0.#} d";

    protected static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    protected static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
