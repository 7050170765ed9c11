using Sluice.Connectors.Smtp;
using Sluice.Core;
using Sluice.Core.Config;

namespace Sluice.Alerts.Notify;

/// <summary><c>alerts.email</c>: who gets alert notices by mail, through the <c>smtp:</c> block every mail of Sluice uses (and its <c>SMTP_*</c> overrides).</summary>
public sealed record EmailOptions(IReadOnlyList<string> To, SmtpOptions Smtp)
{
    public static EmailOptions? Parse(ConfigMap? map)
    {
        if (map is null) { return null; }
        var to = map.StringList("to", doc: "The mail addresses notified (required).");
        var smtp = SmtpOptions.Parse(map.Map("smtp", doc: "The SMTP server the notices are sent through; `SMTP_*` variables override its keys."));
        map.Done();
        if (to.Count == 0) { map.Error("to", "missing: one or more mail addresses to notify"); }
        foreach (var bad in to.Where(a => !MimeKit.MailboxAddress.TryParse(a, out var m) || !m.Address.Contains('@', StringComparison.Ordinal)))
        {
            map.Error("to", $"'{bad}' is not a mail address");
        }

        try
        {
            // Resolved at load, so a missing sender is reported by `sluice validate`, not at the first alert.
            return new EmailOptions(to, smtp.WithEnvironment());
        }
        catch (SluiceException e)
        {
            map.Error("smtp", e.Message);
            return null;
        }
    }
}
