using Sluice.Connectors.Smtp;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>Delivery against real SMTP servers: failures, retries, dead letters, concurrent runs, bad input.</summary>
public sealed class ReminderDeliveryTests
{
    private static readonly DateTimeOffset Due = T0 + TimeSpan.FromDays(30);

    [Fact]
    public async Task Smtp_down_retries_with_backoff_on_the_clock_then_the_next_run_delivers_once()
    {
        using var h = new ReminderHarness();
        using var smtp = new ThrowawaySmtp();
        await h.LandAsync("mongo", h.Mongo("A", T0));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1)));
        var options = new SmtpOptions { Host = "127.0.0.1", Port = smtp.Port, Tls = SmtpTls.None, From = "r@sluice.test", ConnectAttempts = 3, Backoff = TimeSpan.FromSeconds(1) };

        h.Clock.SetUtcNow(Due);
        var run = h.Job(options).RunAsync(new Core.Recipes.JobRequest(Due), CancellationToken.None);
        var advanced = TimeSpan.Zero;
        while (!run.IsCompleted && advanced < TimeSpan.FromMinutes(5))
        {
            await Task.Delay(50);
            h.Clock.Advance(TimeSpan.FromMilliseconds(250));
            advanced += TimeSpan.FromMilliseconds(250);
        }

        run.IsCompleted.ShouldBeTrue("the run should have given up after three attempts; awaiting it could hang the suite");
        var error = await Should.ThrowAsync<Core.SluiceException>(run);
        error.Message.ShouldContain("unavailable after 3 attempt(s)");
        error.Message.ShouldContain("1 waiting for a retry");
        advanced.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(3), "pauses of 1 s and 2 s between the three attempts, on the injected clock");
        h.Outbox().Counts()[ReminderOutbox.Pending].ShouldBe(1);

        await smtp.StartAsync();
        var outcome = await h.Job(options).RunAsync(new Core.Recipes.JobRequest(Due + TimeSpan.FromMinutes(5)), CancellationToken.None);
        await h.Job(options).RunAsync(new Core.Recipes.JobRequest(Due + TimeSpan.FromMinutes(10)), CancellationToken.None);

        outcome.RowsOut.ShouldBe(1, outcome.Message);
        smtp.MailCount.ShouldBe(1);
        h.Outbox().Counts()[ReminderOutbox.Sent].ShouldBe(1);
    }

    [Fact]
    public async Task A_permanent_refusal_or_a_bad_address_goes_to_the_dead_letters_and_the_rest_is_sent()
    {
        using var h = new ReminderHarness();
        using var smtp = new ThrowawaySmtp(reject: "bounce");
        await smtp.StartAsync();
        await h.LandAsync("mongo", h.Mongo("ok", T0, attorney: "ann"), h.Mongo("refused", T0, attorney: "bounce"),
            h.Mongo("bad", T0).Replace(h.Attorney("ann"), "not an address", StringComparison.Ordinal));
        await h.LandAsync("salesforce", h.Salesforce("ok", T0.AddDays(1), attorney: "ann"), h.Salesforce("refused", T0.AddDays(1), attorney: "bounce"),
            h.Salesforce("bad", T0.AddDays(1)).Replace(h.Attorney("ann"), "not an address", StringComparison.Ordinal));
        var options = new SmtpOptions { Host = "127.0.0.1", Port = smtp.Port, Tls = SmtpTls.None, From = "r@sluice.test", ConnectAttempts = 1 };

        var outcome = await h.EvaluateAsync(Due, options);
        await h.EvaluateAsync(Due + TimeSpan.FromHours(1), options);

        outcome.Message.ShouldContain("1 sent, 2 failed");
        smtp.MailCount.ShouldBe(1, "failed reminders are not retried by later runs");
        var letters = h.Services.DeadLetters.List("mail:repeat-reminder/");
        letters.Count.ShouldBe(2);
        var refused = letters.Single(l => l.Position.Contains(h.Case("refused"), StringComparison.Ordinal));
        refused.Reason.ShouldContain("550");
        refused.Reason.ShouldContain("Recipient address rejected");
        refused.Reason.ShouldNotContain(h.Attorney("bounce"), Case.Insensitive, "the server's answer is kept, the address is not");
        letters.Single(l => l.Position.Contains(h.Case("bad"), StringComparison.Ordinal)).Reason.ShouldContain("not a valid mail address");
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_reminder WHERE status = 'failed'").ShouldBe(2);
    }

    [Fact]
    public async Task Two_overlapping_runs_send_each_reminder_once()
    {
        using var h = new ReminderHarness();
        var cases = Enumerable.Range(0, 25).Select(i => $"c{i}").ToList();
        await h.LandAsync("mongo", cases.Select(c => h.Mongo(c, T0.AddMinutes(cases.IndexOf(c)), attorney: c)).ToArray());
        await h.LandAsync("salesforce", cases.Select(c => h.Salesforce(c, T0.AddDays(1), attorney: c)).ToArray());
        h.Clock.SetUtcNow(Due + TimeSpan.FromHours(1));

        var runs = Enumerable.Range(0, 3).Select(_ => Task.Run(() => h.Job().RunAsync(new Core.Recipes.JobRequest(Due + TimeSpan.FromHours(1)), CancellationToken.None))).ToList();
        var outcomes = await Task.WhenAll(runs);

        outcomes.Sum(o => o.RowsOut).ShouldBe(cases.Count, string.Join(" | ", outcomes.Select(o => o.Message)));
        foreach (var c in cases)
        {
            h.Mails(c).Count.ShouldBe(1, c);
        }

        h.Outbox().Counts()[ReminderOutbox.Sent].ShouldBe(cases.Count);
    }

    [Fact]
    public async Task Malformed_events_and_missing_attorney_email_are_dead_letters_with_their_reason_and_good_ones_land()
    {
        using var h = new ReminderHarness();
        var noEmailSf = h.Salesforce("s1", T0).Replace($"\"attorney_email\": \"{h.Attorney("ann")}\", ", "", StringComparison.Ordinal);
        var noEmailMongo = h.Mongo("m1", T0).Replace($"\"attorney_email\": \"{h.Attorney("ann")}\"", "\"attorney_email\": null", StringComparison.Ordinal);
        var sf = await h.LandAsync("salesforce", h.Salesforce("s0", T0), noEmailSf, h.Salesforce("s2", T0).Replace("0.82", "\"very\"", StringComparison.Ordinal), "{\"salesforce_object_id\": \"x\",", h.Salesforce("s3", T0));
        var mongo = await h.LandAsync("mongo", noEmailMongo, h.Mongo("m2", T0).Replace(ReminderHarness.Iso(T0), "21/07/2025", StringComparison.Ordinal), "[]", h.Mongo("m0", T0));

        sf.Events.Count.ShouldBe(2);
        mongo.Events.Count.ShouldBe(1);
        sf.Rejected.Select(r => r.Reason).ShouldBe([
            "salesforce: field 'attorney_email': missing required field 'attorney_email'",
            "salesforce: field 'attributes.confidence_score': expected a number, got the text 'very'",
            "salesforce: not valid JSON at byte 29: Expected start of a property name or value, but instead reached end of data",
        ]);
        mongo.Rejected.Select(r => r.Reason).ShouldBe([
            "mongo: field 'attorney_email': missing required field 'attorney_email'",
            "mongo: field 'event_timestamp': expected an ISO-8601 timestamp such as 2025-07-21T10:34:00Z, got '21/07/2025'",
            "mongo: record is not a JSON object (found an array)",
        ]);
        var letters = h.Services.DeadLetters.List("test:repeat-reminder/");
        letters.Count.ShouldBe(6);
        letters.ShouldAllBe(l => l.Payload!.StartsWith("enc1:", StringComparison.Ordinal), "payloads at rest are encrypted, as in source_event");
        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(9, "every record is kept as received");
        h.Engine.Count("SELECT count(*) FROM reminders.source_event WHERE error IS NOT NULL").ShouldBe(6);
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(3);
    }
}
