using System.Globalization;
using Sluice.Connectors.Smtp;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// repeat-reminder with its SMTP server SIGKILLed in the middle of a run and started again: the run ends loudly with
/// what is left, and the next run sends the rest; no reminder goes out twice, and one whose message was in flight at
/// the kill is marked unconfirmed (never sent again by itself) rather than guessed.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class SmtpRestartTests
{
    private const int Cases = 40;

    [Fact]
    public async Task Smtp_killed_mid_run_and_restarted_each_reminder_goes_out_at_most_once_and_all_but_an_in_flight_one_exactly_once()
    {
        using var h = new ReminderHarness(systemClock: true);
        using var smtp = new ThrowawaySmtp(holdSeconds: 0.05);
        await smtp.StartAsync();
        var cases = Enumerable.Range(0, Cases).Select(i => string.Create(CultureInfo.InvariantCulture, $"k{i}")).ToList();
        await h.LandAsync("mongo", cases.Select(c => h.Mongo(c, T0, attorney: c)).ToArray());
        await h.LandAsync("salesforce", cases.Select(c => h.Salesforce(c, T0.AddDays(1), attorney: c)).ToArray());
        var options = new SmtpOptions { Host = "127.0.0.1", Port = smtp.Port, Tls = SmtpTls.None, From = "r@sluice.test", ConnectAttempts = 2, Backoff = TimeSpan.FromMilliseconds(200) };
        var due = T0 + TimeSpan.FromDays(30) + TimeSpan.FromHours(1);

        var first = h.Job(options).RunAsync(new Core.Recipes.JobRequest(due), CancellationToken.None);
        await VehicleFilesDiskFullTests.WaitUntilAsync(() => smtp.MailCount >= 10 || first.IsCompleted, TimeSpan.FromSeconds(60), () => $"{smtp.MailCount} mails");
        smtp.Stop();
        var firstError = "";
        try
        {
            var outcome = await first.WaitAsync(TimeSpan.FromSeconds(120));
            firstError = outcome.Message;
        }
        catch (Core.SluiceException e)
        {
            firstError = e.Message;
        }

        var afterFirst = smtp.MailCount;
        afterFirst.ShouldBeLessThan(Cases, "the server must go down mid-run, or the test proves nothing");
        await smtp.StartAsync();
        await h.Job(options).RunAsync(new Core.Recipes.JobRequest(due + TimeSpan.FromMinutes(5)), CancellationToken.None);
        (await h.Job(options).RunAsync(new Core.Recipes.JobRequest(due + TimeSpan.FromMinutes(10)), CancellationToken.None)).RowsOut.ShouldBe(0);

        var perCase = cases.ToDictionary(c => c, c => MailFolder.To(smtp.MailDir, h.Attorney(c)).Count, StringComparer.Ordinal);
        var counts = h.Outbox().Counts();
        var sent = counts.GetValueOrDefault(ReminderOutbox.Sent);
        var unconfirmed = counts.GetValueOrDefault(ReminderOutbox.Unconfirmed);
        var mails = perCase.Values.Sum();
        ChaosFigures.Record(nameof(Smtp_killed_mid_run_and_restarted_each_reminder_goes_out_at_most_once_and_all_but_an_in_flight_one_exactly_once), "repeat-reminder",
            "SMTP SIGKILL mid-run, restarted", Cases, sent, mails, perCase.Values.Count(n => n > 1), Cases - perCase.Values.Count(n => n > 0),
            $"{afterFirst} mails before the kill; outbox: {sent} sent, {unconfirmed} unconfirmed (a dead letter for the operator); first run: {firstError}");

        firstError.ShouldNotBeNullOrWhiteSpace("the interrupted run says what is left");
        perCase.Values.ShouldAllBe(n => n <= 1, "no reminder goes out twice");
        (sent + unconfirmed).ShouldBe(Cases);
        unconfirmed.ShouldBeLessThanOrEqualTo(1, "only a message in flight at the kill is in doubt");
        ((long)cases.Count(c => perCase[c] == 1)).ShouldBeGreaterThanOrEqualTo(sent, "every reminder marked sent was received");
    }
}
