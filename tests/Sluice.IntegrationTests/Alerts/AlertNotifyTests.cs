using Microsoft.Extensions.Time.Testing;
using Sluice.Alerts;
using Sluice.Alerts.Conditions;
using Sluice.Alerts.Notify;
using Sluice.Connectors.Smtp;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Alerts;

/// <summary>
/// Alert notices through the real channels: a local HTTP receiver and the SMTP catcher of the test servers, with the
/// states in a real metadata store and the checks on a fake clock.
/// </summary>
public class AlertNotifyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task An_alert_notifies_once_when_it_fires_and_once_when_it_resolves_also_across_a_restart()
    {
        var clock = new FakeTimeProvider(T0);
        using var engine = new Engine(clock);
        using var hook = new WebhookReceiver();
        var tag = Guid.NewGuid().ToString("N")[..10];
        var to = $"alerts-{tag}@example.test";
        var recipe = $"alerting-{tag}";
        var options = Options(recipe, hook.Url, to);

        engine.Services.DeadLetters.Add($"files:{recipe}", "line 1", "not JSON", "x");
        await using (var monitor = new AlertMonitor(recipe, options, engine.Services))
        {
            await monitor.CheckAsync(CancellationToken.None);
            hook.Accepted.Count.ShouldBe(1);
            var fired = hook.Accepted[0];
            fired.GetProperty("status").GetString().ShouldBe("firing");
            fired.GetProperty("alert").GetString().ShouldBe("letters");
            fired.GetProperty("severity").GetString().ShouldBe("critical");
            fired.GetProperty("message").GetString().ShouldBe($"dead letters of {recipe}: 1 new in the last 10 min, more than 0");
            var mail = Mails(to).ShouldHaveSingleItem();
            mail.Subject.ShouldBe($"[sluice] FIRING critical: {recipe}/letters");
            mail.Headers["X-Sluice-Alert-Key"].ShouldBe(fired.GetProperty("key").GetString());
            monitor.Views().Single().State.ShouldBe("firing");

            clock.Advance(TimeSpan.FromMinutes(1));
            await monitor.CheckAsync(CancellationToken.None);
            hook.Accepted.Count.ShouldBe(1, "still firing: no second notice");
        }

        // A restart reads the state back: the alert still fires, and nobody hears of it again.
        await using (var monitor = new AlertMonitor(recipe, options, engine.Services))
        {
            monitor.Views().Single().State.ShouldBe("firing");
            await monitor.CheckAsync(CancellationToken.None);
            hook.Accepted.Count.ShouldBe(1);
            Mails(to).Count.ShouldBe(1);

            clock.Advance(TimeSpan.FromMinutes(10));
            await monitor.CheckAsync(CancellationToken.None);
            hook.Accepted.Count.ShouldBe(2);
            var resolved = hook.Accepted[1];
            resolved.GetProperty("status").GetString().ShouldBe("resolved");
            resolved.GetProperty("firing_since").GetString().ShouldBe("2026-03-01T12:00:00Z");
            Mails(to).Count.ShouldBe(2);
            Mails(to)[1].Subject.ShouldBe($"[sluice] RESOLVED critical: {recipe}/letters");
            monitor.Views().Single().State.ShouldBe("ok");
            monitor.Store.Notices(recipe).Select(n => n.Status).ShouldAllBe(s => s == AlertStore.Sent);
        }

        hook.Requests.ShouldBe(2);
    }

    [Fact]
    public async Task A_webhook_that_is_down_gets_the_notice_after_retries_and_later_checks_in_order()
    {
        var clock = new FakeTimeProvider(T0);
        using var engine = new Engine(clock);
        using var hook = new WebhookReceiver();
        var recipe = $"alerting-{Guid.NewGuid():N}"[..20];
        var options = Options(recipe, hook.Url, to: null);
        await using var monitor = new AlertMonitor(recipe, options, engine.Services);

        // Down for the whole first check (1 attempt + 2 retries), and for the first attempt of the second.
        hook.FailNext = 4;
        engine.Services.DeadLetters.Add($"files:{recipe}", "line 1", "not JSON", "x");
        await monitor.CheckAsync(CancellationToken.None);
        hook.Requests.ShouldBe(3, "one attempt and two retries");
        hook.Accepted.ShouldBeEmpty();
        var notice = monitor.Store.Notices(recipe).ShouldHaveSingleItem();
        notice.Status.ShouldBe(AlertStore.Pending);
        notice.Error.ShouldNotBeNull().ShouldContain("503");
        monitor.Views().Single().NoticesPending.ShouldBe(1);

        // Resolved meanwhile: the resolve waits behind the fire, so the receiver sees them in order.
        clock.Advance(TimeSpan.FromMinutes(11));
        await monitor.CheckAsync(CancellationToken.None);
        hook.Requests.ShouldBe(6, "the fire: one failed attempt and a retry that got through; then the resolve");
        hook.Accepted.Select(a => a.GetProperty("status").GetString()).ShouldBe(["firing", "resolved"]);
        monitor.Store.Notices(recipe).Select(n => n.Status).ShouldBe([AlertStore.Sent, AlertStore.Sent]);
        monitor.Views().Single().NoticesPending.ShouldBe(0);
    }

    [Fact]
    public async Task A_receiver_that_refuses_a_notice_for_good_is_not_retried_and_the_notice_is_given_up()
    {
        var clock = new FakeTimeProvider(T0);
        using var engine = new Engine(clock);
        using var hook = new WebhookReceiver { RefuseWith = 410 };
        var recipe = $"alerting-{Guid.NewGuid():N}"[..20];
        await using var monitor = new AlertMonitor(recipe, Options(recipe, hook.Url, to: null), engine.Services);

        engine.Services.DeadLetters.Add($"files:{recipe}", "line 1", "not JSON", "x");
        await monitor.CheckAsync(CancellationToken.None);
        clock.Advance(TimeSpan.FromMinutes(1));
        await monitor.CheckAsync(CancellationToken.None);
        hook.Requests.ShouldBe(1, "a 4xx other than 408/429 is permanent: no retry, no second round");
        var notice = monitor.Store.Notices(recipe).ShouldHaveSingleItem();
        notice.Status.ShouldBe(AlertStore.Abandoned);
        notice.Error.ShouldNotBeNull().ShouldContain("HTTP 410");
        monitor.Views().Single().State.ShouldBe("firing", "the alert itself still shows");
    }

    private static IReadOnlyList<MimeKit.MimeMessage> Mails(string to) => MailFolder.To(ServerSettings.SmtpMailDir, to);

    private static AlertsOptions Options(string recipe, string url, string? to) => new()
    {
        CheckEvery = TimeSpan.FromSeconds(30),
        Webhook = new WebhookOptions(new Uri(url), TimeSpan.FromSeconds(5), Retries: 2, RetryDelay: TimeSpan.Zero),
        Email = to is null ? null : new EmailOptions([to], new SmtpOptions
        {
            Host = ServerSettings.SmtpHost, Port = ServerSettings.SmtpPort, Tls = SmtpTls.None, From = "Sluice alerts <alerts@sluice.test>", ConnectAttempts = 1,
        }),
        Rules = [new AlertRule(recipe, "letters", AlertSeverity.Critical, new DeadLettersCondition(recipe, null, 0, TimeSpan.FromMinutes(10)))],
    };
}
