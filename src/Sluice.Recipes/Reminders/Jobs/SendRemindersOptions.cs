using Sluice.Connectors.Smtp;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Recipes.Reminders;

namespace Sluice.Recipes.Reminders.Jobs;

/// <summary>
/// Options of a <c>send_reminders</c> job: the store it reads (<c>store.yaml</c>), the rule, the mail and the SMTP
/// server. Validated at load, every problem named with its file, line and key.
/// </summary>
public sealed class SendRemindersOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly SendRemindersOptions Default = OptionDefaults.Of<SendRemindersOptions>();

    public const string DefaultSubject = "Follow up on case {case_id} (client {client_id})";

    public const string DefaultBody = """
        Hello,

        case {case_id} of client {client_id} was closed on {closure_date}, and the client is likely to come back.
        This is reminder {reminder}: a good moment to follow up.

        -- Sluice repeat-reminder ({rule})
        """;

    /// <summary>The store file in the recipe's folder.</summary>
    public required ReminderStoreOptions Store { get; init; }

    public required ReminderRule Rule { get; init; }

    /// <summary>The mail's subject (default: names the case and client).</summary>
    public ReminderTemplate Subject { get; init; } = new(DefaultSubject);

    /// <summary>The mail's plain-text body (default: names the case, client and closure date).</summary>
    public ReminderTemplate Body { get; init; } = new(DefaultBody);

    public required SmtpOptions Smtp { get; init; }

    /// <summary>How long a run's claim on a reminder lasts if the run dies without releasing it and its process lives on.</summary>
    public TimeSpan ClaimLease { get; init; } = TimeSpan.FromMinutes(10);

    public static SendRemindersOptions Parse(ConfigMap map, RecipeContext recipe, string jobName)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        var store = ReminderStoreOptions.FromKey(map, recipe, "The store file in the recipe's folder.");
        var rule = ReminderRule.Parse(map.Map("rule", doc: "The reminder rule: which closures get a reminder, when, and what cancels it."), jobName);
        var mail = map.Map("mail", doc: "The reminder e-mail: `subject` and `body` templates with `{placeholders}`.");
        var subject = new ReminderTemplate(mail?.String("subject", DefaultSubject, doc: "The mail's subject.") ?? DefaultSubject);
        var body = new ReminderTemplate(mail?.String("body", DefaultBody, doc: "The mail's plain-text body.") ?? DefaultBody);
        if (mail is not null)
        {
            foreach (var (key, template) in new[] { ("subject", subject), ("body", body) })
            {
                foreach (var unknown in template.Unknown())
                {
                    mail.Error(key, $"unknown placeholder '{{{unknown}}}' (known: {string.Join(", ", ReminderTemplate.Names.Select(n => "{" + n + "}"))})");
                }
            }

            mail.Done();
        }

        var options = new SendRemindersOptions
        {
            Store = store,
            Rule = rule,
            Subject = subject,
            Body = body,
            Smtp = SmtpOptions.Parse(map.Map("smtp", doc: "The SMTP server the reminders are sent through.")),
            ClaimLease = map.Duration("claim_lease", Default.ClaimLease, doc: "How long a run's claim on a reminder lasts if the run dies without releasing it and its process lives on."),
        };
        if (options.ClaimLease < TimeSpan.FromSeconds(10)) { map.Error("claim_lease", "must be at least 10s"); }
        return options;
    }
}
