using System.Globalization;
using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// The repeat-reminder rule (the job's <c>rule:</c> block; every key optional). A case is eligible once it has a
/// service-closure signal and its latest likely-to-repeat-source event before the due time says "Likely to Repeat"
/// with enough confidence; the reminder is due at closure + <see cref="Delay"/> (then every <see cref="Every"/>, at
/// most <see cref="Times"/> times); an additional purchase after the closure cancels what was not sent.
/// </summary>
public sealed partial class ReminderRule
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly ReminderRule Default = OptionDefaults.Of<ReminderRule>();

    /// <summary>The rule's name, part of every reminder's identity (send-once is per case and rule). Default: the job's name.</summary>
    public required string Name { get; init; }

    /// <summary>Sources whose events can close a case (default <c>[mongo]</c>).</summary>
    public IReadOnlyList<string> ClosureSources { get; init; } = ["mongo"];

    /// <summary>The event type of a service closure (default <c>service_closure</c>).</summary>
    public string ClosureType { get; init; } = "service_closure";

    /// <summary>Sources whose events carry the likely-to-repeat verdict (default <c>[salesforce]</c>).</summary>
    public IReadOnlyList<string> LikelySources { get; init; } = ["salesforce"];

    /// <summary>The status that keeps a reminder, compared without regard to case or surrounding spaces (default <c>Likely to Repeat</c>).</summary>
    public string LikelyStatus { get; init; } = "Likely to Repeat";

    /// <summary>The lowest <c>confidence_score</c> that keeps a reminder, inclusive (default 0.7).</summary>
    public double MinConfidence { get; init; } = 0.7;

    /// <summary>The event type of an additional purchase, from any source, which cancels unsent reminders of the case (default <c>additional_purchase</c>).</summary>
    public string CancelType { get; init; } = "additional_purchase";

    /// <summary>Closure to first reminder (default 30 days; ISO-8601 such as P30D, or 30d).</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromDays(30);

    /// <summary>Between recurring reminders (default none: recurrence off).</summary>
    public TimeSpan Every { get; init; } = TimeSpan.Zero;

    /// <summary>Reminders per case at most, the first included (default 1; with recurrence, its <c>times</c>).</summary>
    public int Times { get; init; } = 1;

    public static ReminderRule Parse(ConfigMap? map, string defaultName)
    {
        if (map is null)
        {
            return new ReminderRule { Name = defaultName };
        }

        var closure = map.Map("closure", doc: "The event that starts a case's reminders.");
        var likely = map.Map("likely", doc: "The event that marks a case likely to repeat (needed for a reminder).");
        var cancel = map.Map("cancel_on", doc: "The event that cancels a case's pending reminders.");
        var recurrence = map.Map("recurrence", doc: "Reminders after the first: `every` and `times`.");
        var rule = new ReminderRule
        {
            Name = map.String("name", defaultName, doc: "The rule's name, part of every reminder's identity (send-once is per case and rule). Default: the job's name.") ?? defaultName,
            ClosureSources = closure is null ? Default.ClosureSources : Sources(closure, Default.ClosureSources),
            ClosureType = closure?.String("event_type", Default.ClosureType, doc: "The closure's `event_type`.") ?? Default.ClosureType,
            LikelySources = likely is null ? Default.LikelySources : Sources(likely, Default.LikelySources),
            LikelyStatus = likely?.String("status", Default.LikelyStatus, doc: "The `status` that marks a case likely to repeat.") ?? Default.LikelyStatus,
            MinConfidence = likely?.Double("min_confidence", Default.MinConfidence, 0, 1, doc: "The lowest `confidence_score` that keeps a reminder, inclusive.") ?? Default.MinConfidence,
            CancelType = cancel?.String("event_type", Default.CancelType, doc: "The cancelling event's `event_type`.") ?? Default.CancelType,
            Delay = map.Duration("delay", Default.Delay, doc: "Closure to first reminder."),
            Every = recurrence?.Duration("every", Default.Every, doc: "Between recurring reminders.") ?? Default.Every,
            Times = recurrence?.Int("times", Default.Times, 1, 1000, doc: "Reminders per case at most, the first included.") ?? Default.Times,
        };
        closure?.Done();
        likely?.Done();
        cancel?.Done();
        if (recurrence is not null)
        {
            if (!recurrence.Has("every") || rule.Every <= TimeSpan.Zero) { recurrence.Error("every", "recurrence needs 'every', a duration above zero (for example P7D)"); }
            if (!recurrence.Has("times")) { recurrence.Error("times", "recurrence needs 'times', the most reminders per case (the first included)"); }
            recurrence.Done();
        }

        map.Done();
        if (!RuleName().IsMatch(rule.Name)) { map.Error("name", $"'{rule.Name}' must be letters, digits, '-', '_' or '.'"); }
        return rule;
    }

    private static IReadOnlyList<string> Sources(ConfigMap map, IReadOnlyList<string> fallback)
    {
        var list = map.StringList("sources", doc: "The mappings (by name) whose events count here.", fallback: fallback);
        if (list.Count == 0) { map.Error("sources", "name at least one source (a mapping's name, such as salesforce)"); }
        return list;
    }

    /// <summary>A one-line description for job messages and the docs.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"closure ({string.Join("|", ClosureSources)}: {ClosureType}) + {Delay.TotalDays:0.##} d, kept by '{LikelyStatus}' >= {MinConfidence} ({string.Join("|", LikelySources)}), cancelled by {CancelType}{(Times > 1 ? $", every {Every.TotalDays:0.##} d up to {Times} times" : "")}");

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex RuleName();
}
