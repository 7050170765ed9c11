using MimeKit;
using Sluice.Connectors.Smtp;

namespace Sluice.Alerts.Notify;

/// <summary>
/// Mails each notice to <see cref="EmailOptions.To"/> through <see cref="SmtpSender"/> (its connection attempts and
/// back-off are the retries). A temporary refusal or a lost connection leaves the notice for the next check; a
/// connection lost while the message was being transmitted may mean the server has it: the next check sends it again
/// rather than lose it (the mail carries the notice's key in <c>X-Sluice-Alert-Key</c> to spot such a repeat).
/// </summary>
public sealed class EmailChannel(EmailOptions options, TimeProvider time) : IAlertChannel
{
    public string Name => "email";

    public string Target => string.Join(", ", options.To);

    public async Task<int> DeliverAsync(AlertNotice notice, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(notice);
        using var message = Message(notice);
        SendResult result;
        // A connection per notice: alerts are rare, and a connection kept between checks would be closed by the server meanwhile.
        var sender = new SmtpSender(options.Smtp, time);
        await using var _ = sender.ConfigureAwait(false);
        try
        {
            result = await sender.SendAsync(message, () => true, ct).ConfigureAwait(false);
        }
        catch (SmtpUnavailableException e)
        {
            throw new AlertDeliveryException(e.Message, options.Smtp.ConnectAttempts, permanent: false);
        }

        return result.Status switch
        {
            SendStatus.Sent => 1,
            SendStatus.Permanent => throw new AlertDeliveryException($"{options.Smtp.Describe()} refused it: {result.Detail}", 1, permanent: true),
            _ => throw new AlertDeliveryException($"{options.Smtp.Describe()}: {result.Detail}", 1, permanent: false),
        };
    }

    public MimeMessage Message(AlertNotice notice)
    {
        ArgumentNullException.ThrowIfNull(notice);
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(options.Smtp.From));
        foreach (var to in options.To) { message.To.Add(MailboxAddress.Parse(to)); }
        var firing = notice.Event == AlertStates.Firing;
        message.Subject = $"[sluice] {(firing ? "FIRING" : "RESOLVED")} {notice.Severity}: {notice.Recipe}/{notice.Alert}";
        message.Headers.Add("X-Sluice-Alert-Key", notice.Key);
        var at = notice.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        message.Body = new TextPart("plain")
        {
            Text = $"{notice.Recipe}/{notice.Alert} ({notice.Kind}, {notice.Severity}) {(firing ? "fired" : "resolved")} at {at}.\n\n{notice.Message}\n"
                + (notice.FiringSince is { } since ? $"\nIt had been firing since {since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z.\n" : "")
                + "\n-- Sluice alerts (sluice status shows every alert's state)\n",
        };
        return message;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
