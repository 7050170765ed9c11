using Sluice.Core.Config;

namespace Sluice.Alerts.Notify;

/// <summary>
/// <c>alerts.webhook</c>: where alert notices are POSTed as JSON. Each notice is tried <see cref="Retries"/> more times
/// with a doubling pause from <see cref="RetryDelay"/>, each attempt bounded by <see cref="Timeout"/>; one still not
/// delivered is tried again at the next check, up to <see cref="AlertsOptions.MaxDeliveryRounds"/> checks.
/// </summary>
public sealed record WebhookOptions(Uri Url, TimeSpan Timeout, int Retries, TimeSpan RetryDelay)
{
    public static WebhookOptions? Parse(ConfigMap? map)
    {
        if (map is null) { return null; }
        var url = map.String("url", doc: "Where notices are POSTed (required; `${VAR}` works).") is { } text ? EnvText.Expand(text) : null;
        var options = new WebhookOptions(
            new Uri("http://invalid/"),
            map.Duration("timeout", TimeSpan.FromSeconds(5), doc: "Timeout of one attempt."),
            map.Int("retries", 3, 0, 10, doc: "Retries of a notice within one check; one not delivered is tried again at the next check."),
            map.Duration("retry_delay", TimeSpan.FromSeconds(1), doc: "Pause before a retry, doubled for each further one."));
        map.Done();
        if (options.Timeout <= TimeSpan.Zero) { map.Error("timeout", "must be more than 0"); }
        if (string.IsNullOrWhiteSpace(url))
        {
            map.Error("url", "missing: the address notices are POSTed to, for example http://127.0.0.1:9000/alerts (${VAR} works)");
            return null;
        }

        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            map.Error("url", $"'{url}' is not an http(s) URL");
            return null;
        }

        return options with { Url = uri };
    }
}
