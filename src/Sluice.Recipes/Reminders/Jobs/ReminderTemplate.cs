using System.Globalization;
using System.Text.RegularExpressions;

namespace Sluice.Recipes.Reminders.Jobs;

/// <summary>The values a reminder's subject and body can name.</summary>
public sealed record ReminderFields(string CaseId, string Client, DateTime ClosureAt, DateTime DueAt, int Occurrence, string AttorneyEmail, string Rule);

/// <summary>
/// A subject or body with placeholders: <c>{case_id}</c>, <c>{client_id}</c>, <c>{closure_date}</c> (YYYY-MM-DD),
/// <c>{closure_at}</c> and <c>{due_at}</c> (ISO-8601, UTC), <c>{due_date}</c>, <c>{reminder}</c> (1 for the first),
/// <c>{attorney_email}</c>, <c>{rule}</c>. An unknown placeholder is a configuration error.
/// </summary>
public sealed partial class ReminderTemplate(string text)
{
    public static readonly IReadOnlyList<string> Names = ["case_id", "client_id", "closure_date", "closure_at", "due_date", "due_at", "reminder", "attorney_email", "rule"];

    public string Text => text;

    /// <summary>Placeholders the text uses that are not in <see cref="Names"/>.</summary>
    public IReadOnlyList<string> Unknown() =>
        Placeholder().Matches(text).Select(m => m.Groups[1].Value).Where(n => !Names.Contains(n)).Distinct().ToList();

    public string Render(ReminderFields f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return Placeholder().Replace(text, m => m.Groups[1].Value switch
        {
            "case_id" => f.CaseId,
            "client_id" => f.Client,
            "closure_date" => f.ClosureAt.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            "closure_at" => f.ClosureAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            "due_date" => f.DueAt.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            "due_at" => f.DueAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            "reminder" => (f.Occurrence + 1).ToString(CultureInfo.InvariantCulture),
            "attorney_email" => f.AttorneyEmail,
            "rule" => f.Rule,
            _ => m.Value,
        });
    }

    [GeneratedRegex(@"\{([a-z_]+)\}")]
    private static partial Regex Placeholder();
}
