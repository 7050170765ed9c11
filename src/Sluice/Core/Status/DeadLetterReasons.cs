using System.Text;

namespace Sluice.Core.Status;

/// <summary>
/// Dead-letter reasons grouped into classes for counting: a reason names its record and values ("line 12, record 3:
/// field 'speed': 'abc' is not a number"), so counting by the text would give one label per letter. A class keeps the
/// words and drops digits and quoted values, and a source gets at most <see cref="MaxClasses"/> (the rest count as
/// <c>other</c>), so the label set stays bounded whatever arrives.
/// </summary>
public static class DeadLetterReasons
{
    public const int MaxClasses = 20;

    private const int MaxLength = 80;

    public static string Class(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        var sb = new StringBuilder(Math.Min(reason.Length, MaxLength));
        var quote = '\0';
        foreach (var ch in reason)
        {
            if (quote != '\0')
            {
                if (ch == quote) { quote = '\0'; sb.Append('…').Append(ch); }
                continue;
            }

            if (ch is '\'' or '"') { quote = ch; sb.Append(ch); continue; }
            if (char.IsDigit(ch)) { if (sb.Length == 0 || sb[^1] != '#') { sb.Append('#'); } continue; }
            if (char.IsControl(ch)) { continue; }
            sb.Append(ch);
            if (sb.Length >= MaxLength) { break; }
        }

        return sb.ToString().Trim();
    }

    /// <summary>Per source, counts by class: the largest <see cref="MaxClasses"/> classes, the rest as <c>other</c>.</summary>
    public static IReadOnlyList<DeadLetterCount> Count(string recipe, IEnumerable<(string Source, string Reason, long Count)> rows) =>
        rows.GroupBy(r => r.Source, StringComparer.Ordinal).SelectMany(source =>
        {
            var classes = source.GroupBy(r => Class(r.Reason), StringComparer.Ordinal)
                .Select(g => (Reason: g.Key, Count: g.Sum(r => r.Count)))
                .OrderByDescending(c => c.Count).ThenBy(c => c.Reason, StringComparer.Ordinal).ToList();
            var kept = classes.Take(MaxClasses).Select(c => new DeadLetterCount(recipe, source.Key, c.Reason, c.Count));
            var rest = classes.Skip(MaxClasses).Sum(c => c.Count);
            return rest == 0 ? kept : kept.Append(new DeadLetterCount(recipe, source.Key, "other", rest));
        }).OrderBy(c => c.Source, StringComparer.Ordinal).ToList();
}
