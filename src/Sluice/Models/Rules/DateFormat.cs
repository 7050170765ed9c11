namespace Sluice.Models.Rules;

/// <summary>
/// A date format a clean rule accepts: three parts (<c>yyyy</c>; <c>MM</c> or <c>M</c>; <c>dd</c> or <c>d</c>) in any
/// order, with one separator character between them (<c>dd/MM/yyyy</c>, <c>yyyy-MM-dd</c>, <c>dd.MM.yyyy</c>) or none
/// (<c>yyyyMMdd</c>, fixed width). A one- or two-digit part accepts one or two digits. <c>yyyy-MM-dd</c> also takes
/// an ISO-8601 instant (<c>2024-01-05T10:30:00Z</c>), keeping its date as written.
/// </summary>
public sealed record DateFormat(string Text, char? Separator, IReadOnlyList<char> Order, IReadOnlyList<int> Widths)
{
    public bool IsIso => Text == "yyyy-MM-dd";

    public static DateFormat? TryParse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = new List<string>();
        var separators = new HashSet<char>();
        var current = "";
        foreach (var ch in text)
        {
            if (ch is 'y' or 'M' or 'd')
            {
                if (current.Length > 0 && current[0] != ch) { parts.Add(current); current = ""; }
                current += ch;
            }
            else
            {
                if (current.Length == 0) { return null; }
                parts.Add(current);
                current = "";
                separators.Add(ch);
            }
        }

        if (current.Length > 0) { parts.Add(current); }
        if (parts.Count != 3 || separators.Count > 1 || parts.Select(p => p[0]).Distinct().Count() != 3)
        {
            return null;
        }

        if (parts.Any(p => p is not ("yyyy" or "MM" or "M" or "dd" or "d")))
        {
            return null;
        }

        char? separator = separators.Count == 1 ? separators.First() : null;
        if (separator is null && parts.Any(p => p.Length == 1))
        {
            return null;
        }

        if (separator is not null && text.Count(c => c == separator) != 2)
        {
            return null;
        }

        return new DateFormat(text, separator, parts.Select(p => p[0]).ToList(), parts.Select(p => p.Length).ToList());
    }
}
