using System.Globalization;
using Sluice.Core;
using Sluice.Core.Config;

namespace Sluice.Connectors.Smtp;

/// <summary>How the SMTP connection is secured.</summary>
public enum SmtpTls
{
    /// <summary>STARTTLS when the server offers it, TLS on connect for port 465, else plain.</summary>
    Auto,

    /// <summary>Plain text (a local catcher).</summary>
    None,

    /// <summary>STARTTLS, required.</summary>
    StartTls,

    /// <summary>TLS from the first byte (port 465).</summary>
    Tls,
}

/// <summary>
/// The SMTP server mail goes through (a job's <c>smtp:</c> block). Every value can be overridden by the environment:
/// <c>SMTP_HOST</c>, <c>SMTP_PORT</c>, <c>SMTP_TLS</c> (<c>none|starttls|tls</c>), <c>SMTP_USER</c>, <c>SMTP_PASSWORD</c>,
/// <c>SMTP_FROM</c>; the environment wins, so one deployment setting reaches every recipe. Validated at load.
/// </summary>
public sealed class SmtpOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly SmtpOptions Default = new();

    /// <summary>Server host.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Server port.</summary>
    public int Port { get; init; } = 25;

    /// <summary>Connection security.</summary>
    public SmtpTls Tls { get; init; } = SmtpTls.Auto;

    /// <summary>User for AUTH.</summary>
    public string? User { get; init; }

    /// <summary>Password for AUTH (never in YAML; <c>SMTP_PASSWORD</c>).</summary>
    public string? Password { get; init; }

    /// <summary>The sender address (required unless <c>SMTP_FROM</c> is set).</summary>
    public string From { get; init; } = "";

    /// <summary>Per SMTP command.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Connection attempts per run before the run gives up and leaves its reminders for the next run.</summary>
    public int ConnectAttempts { get; init; } = 3;

    /// <summary>Pause before the second connection attempt, doubled for each further one.</summary>
    public TimeSpan Backoff { get; init; } = TimeSpan.FromSeconds(1);

    public static SmtpOptions Parse(ConfigMap? map)
    {
        if (map is null)
        {
            return new SmtpOptions();
        }

        var options = new SmtpOptions
        {
            Host = map.String("host", Default.Host, doc: "Server host.") ?? Default.Host,
            Port = map.Int("port", Default.Port, 1, 65535, doc: "Server port."),
            Tls = map.Enum("tls", Default.Tls, doc: "Connection security."),
            User = map.String("user", doc: "User for AUTH."),
            From = map.String("from", Default.From, doc: "The sender address (required unless `SMTP_FROM` is set).") ?? Default.From,
            Timeout = map.Duration("timeout", Default.Timeout, doc: "Per SMTP command."),
            ConnectAttempts = map.Int("connect_attempts", Default.ConnectAttempts, 1, 20, doc: "Connection attempts per run before the run gives up and leaves its reminders for the next run."),
            Backoff = map.Duration("backoff", Default.Backoff, doc: "Pause before the second connection attempt, doubled for each further one."),
        };
        map.Declare("password", "text", null, "Refused: a password does not belong in a recipe file; set `SMTP_PASSWORD`.");
        if (map.Has("password"))
        {
            map.Error("password", "passwords do not belong in recipe files; set SMTP_PASSWORD");
        }

        map.Done();
        if (options.Timeout <= TimeSpan.Zero) { map.Error("timeout", "must be more than 0"); }
        if (options.From.Length > 0 && !MimeKit.MailboxAddress.TryParse(options.From, out _)) { map.Error("from", $"'{options.From}' is not a mail address"); }
        return options;
    }

    /// <summary>These options with the <c>SMTP_*</c> environment applied; throws naming the variable when one is malformed or the sender is missing.</summary>
    public SmtpOptions WithEnvironment()
    {
        var port = Port;
        if (Env("SMTP_PORT") is { } p && !int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out port))
        {
            throw new SluiceException($"smtp: SMTP_PORT '{p}' is not a port number.");
        }

        var tls = Tls;
        if (Env("SMTP_TLS") is { } t)
        {
            tls = t.ToLowerInvariant() switch
            {
                "none" => SmtpTls.None,
                "starttls" => SmtpTls.StartTls,
                "tls" or "ssl" => SmtpTls.Tls,
                "auto" => SmtpTls.Auto,
                _ => throw new SluiceException($"smtp: SMTP_TLS '{t}' must be none, starttls or tls."),
            };
        }

        var resolved = new SmtpOptions
        {
            Host = Env("SMTP_HOST") ?? Host,
            Port = port,
            Tls = tls,
            User = Env("SMTP_USER") ?? User,
            Password = Env("SMTP_PASSWORD") ?? Password,
            From = Env("SMTP_FROM") ?? From,
            Timeout = Timeout,
            ConnectAttempts = ConnectAttempts,
            Backoff = Backoff,
        };
        if (resolved.From.Length == 0)
        {
            throw new SluiceException("smtp: no sender address; set smtp.from in the recipe or SMTP_FROM.");
        }

        if (!MimeKit.MailboxAddress.TryParse(resolved.From, out _))
        {
            throw new SluiceException($"smtp: the sender '{resolved.From}' is not a mail address.");
        }

        return resolved;
    }

    /// <summary>The same options aimed at another server (the demo's own catcher, a test's).</summary>
    public SmtpOptions At(string host, int port, SmtpTls tls = SmtpTls.None) => new()
    {
        Host = host, Port = port, Tls = tls, User = User, Password = Password, From = From, Timeout = Timeout,
        ConnectAttempts = ConnectAttempts, Backoff = Backoff,
    };

    public string Describe() => $"{Host}:{Port} ({Tls.ToString().ToLowerInvariant()})";

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}
