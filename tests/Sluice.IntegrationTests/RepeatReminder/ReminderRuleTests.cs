using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The rule against the embedded warehouse and the real SMTP catcher, evaluated as of chosen instants.</summary>
public sealed class ReminderRuleTests
{
    private static readonly TimeSpan Month = TimeSpan.FromDays(30);

    [Fact]
    public async Task Signals_in_either_order_give_one_reminder_due_exactly_at_closure_plus_delay()
    {
        using var h = new ReminderHarness();
        // A: closure first, then the likely-to-repeat verdict. B: the verdict first, then the closure.
        await h.LandAsync("mongo", h.Mongo("A", T0, attorney: "ann"));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(2), attorney: "ann"), h.Salesforce("B", T0.AddDays(-3), attorney: "bob"));
        await h.LandAsync("mongo", h.Mongo("B", T0.AddHours(1), attorney: "bob"));

        var early = await h.EvaluateAsync(T0 + Month - TimeSpan.FromSeconds(1));
        early.RowsOut.ShouldBe(0);
        h.Mails().ShouldBeEmpty("one second before the due time nothing is due");

        var atDue = await h.EvaluateAsync(T0 + Month);
        atDue.RowsOut.ShouldBe(1, atDue.Message);
        h.Mails("ann").Count.ShouldBe(1, "due exactly at the evaluation instant is due");
        h.Mails("bob").ShouldBeEmpty("B closed an hour later, so it is not due yet");

        var later = await h.EvaluateAsync(T0 + Month + TimeSpan.FromDays(1));
        later.RowsOut.ShouldBe(1, later.Message);
        await h.EvaluateAsync(T0 + Month + TimeSpan.FromDays(5));
        h.Mails("ann").Count.ShouldBe(1, "sent once");
        h.Mails("bob").Count.ShouldBe(1, "sent once");

        var mail = h.Mails("ann")[0];
        mail.To.Mailboxes.Single().Address.ShouldBe(h.Attorney("ann"));
        mail.Subject!.ShouldContain(h.Case("A"));
        mail.Subject!.ShouldContain(h.Client());
        mail.TextBody!.ShouldContain("closed on 2025-07-01");
        mail.TextBody!.ShouldContain(h.Case("A"));
        mail.MessageId.ShouldBe($"{ReminderRuleSql.Key(h.Options.Rule.Name, ClientKey(h), h.Case("A"), 0)}@repeat-reminder.sluice");
        mail.Headers["X-Sluice-Reminder-Key"].ShouldNotBeNullOrEmpty();
    }

    [Fact]
    public async Task Duplicates_of_each_signal_give_one_reminder()
    {
        using var h = new ReminderHarness();
        var closure = h.Mongo("A", T0, id: "m-1");
        var likely = h.Salesforce("A", T0.AddDays(1), id: "sf-1");
        await h.LandAsync("mongo", closure, closure);
        await h.LandAsync("salesforce", likely, likely);
        await h.LandAsync("mongo", closure);
        await h.LandAsync("salesforce", likely, h.Salesforce("A", T0.AddDays(1), id: "sf-2"));

        (await h.EvaluateAsync(T0 + Month)).RowsOut.ShouldBe(1);
        await h.EvaluateAsync(T0 + Month + TimeSpan.FromHours(1));

        h.Mails().Count.ShouldBe(1);
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBeGreaterThanOrEqualTo(7, "attorney_events keeps every event, duplicates included");
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_reminder WHERE status = 'sent'").ShouldBe(1);
    }

    [Fact]
    public async Task The_latest_salesforce_event_before_the_due_time_decides()
    {
        using var h = new ReminderHarness();
        await h.LandAsync("mongo", h.Mongo("withdrawn", T0, attorney: "w"), h.Mongo("low", T0, attorney: "l"), h.Mongo("late", T0, attorney: "x"), h.Mongo("back", T0, attorney: "b"));
        await h.LandAsync("salesforce",
            h.Salesforce("withdrawn", T0.AddDays(1), attorney: "w"),
            h.Salesforce("withdrawn", T0.AddDays(10), status: "Not Likely", attorney: "w"),
            h.Salesforce("low", T0.AddDays(1), score: 0.69, attorney: "l"),
            h.Salesforce("late", T0.AddDays(1), score: 0.7, attorney: "x"),
            h.Salesforce("late", T0 + Month + TimeSpan.FromSeconds(1), status: "Not Likely", attorney: "x"),
            h.Salesforce("back", T0.AddDays(1), status: "Not Likely", attorney: "b"),
            h.Salesforce("back", T0.AddDays(20), status: "likely to repeat ", score: 0.95, attorney: "b"));

        var outcome = await h.EvaluateAsync(T0 + Month + TimeSpan.FromDays(2));

        outcome.RowsOut.ShouldBe(2, outcome.Message);
        h.Mails("w").ShouldBeEmpty("withdrawn before the due time");
        h.Mails("l").ShouldBeEmpty("confidence below the threshold");
        h.Mails("x").Count.ShouldBe(1, "0.7 is at the threshold, and a withdrawal after the due time does not count");
        h.Mails("b").Count.ShouldBe(1, "the verdict came back before the due time (status compared without case or spaces)");
    }

    [Fact]
    public async Task A_purchase_cancels_what_is_left_of_a_recurrence()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("# recurrence: {every: P7D, times: 3}", "recurrence: {every: P7D, times: 3}", StringComparison.Ordinal));
        await h.LandAsync("mongo", h.Mongo("bought", T0, attorney: "p"), h.Mongo("kept", T0, attorney: "k"));
        await h.LandAsync("salesforce", h.Salesforce("bought", T0.AddDays(1), attorney: "p"), h.Salesforce("kept", T0.AddDays(1), attorney: "k"));

        await h.EvaluateAsync(T0 + Month);
        h.Mails("p").Count.ShouldBe(1);
        await h.LandAsync("salesforce", h.Salesforce("bought", T0 + Month + TimeSpan.FromDays(3), eventType: "additional_purchase", attorney: "p"));
        await h.EvaluateAsync(T0 + Month + TimeSpan.FromDays(7));
        await h.EvaluateAsync(T0 + Month + TimeSpan.FromDays(20));

        h.Mails("p").Count.ShouldBe(1, "the purchase cancelled reminders 2 and 3");
        h.Mails("k").Count.ShouldBe(3, "every 7 days, at most 3 times");
        h.Mails("k").Select(m => m.Date.UtcDateTime).ShouldBe([(T0 + Month).UtcDateTime, (T0 + Month + TimeSpan.FromDays(7)).UtcDateTime, (T0 + Month + TimeSpan.FromDays(14)).UtcDateTime]);
    }

    [Fact]
    public async Task A_pending_reminder_that_stops_being_due_is_withdrawn_not_sent()
    {
        using var h = new ReminderHarness();
        await h.LandAsync("mongo", h.Mongo("A", T0));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1)));
        using var refusing = FreePort.Refusing();
        var down = ReminderHarness.CatcherSmtp.At("127.0.0.1", refusing.Port);

        await Should.ThrowAsync<Core.SluiceException>(() => h.EvaluateAsync(T0 + Month, down));
        h.Outbox().Counts()[ReminderOutbox.Pending].ShouldBe(1);
        // A purchase arrives while the reminder waits for the SMTP server.
        await h.LandAsync("salesforce", h.Salesforce("A", T0 + Month + TimeSpan.FromHours(1), eventType: "additional_purchase"));
        var outcome = await h.EvaluateAsync(T0 + Month + TimeSpan.FromHours(2));

        outcome.Message.ShouldContain("1 withdrawn");
        h.Mails().ShouldBeEmpty();
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_reminder WHERE status = 'withdrawn'").ShouldBe(1);
    }

    [Fact]
    public async Task Attorney_email_and_client_id_are_encrypted_at_rest_and_clear_only_in_the_mail()
    {
        using var h = new ReminderHarness();
        await h.LandAsync("mongo", h.Mongo("A", T0));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1)));
        await h.EvaluateAsync(T0 + Month);

        h.Mails().Single().To.Mailboxes.Single().Address.ShouldBe(h.Attorney("ann"));
        var lake = Path.Combine(h.Engine.DataRoot, "lake");
        foreach (var file in Directory.EnumerateFiles(lake, "*.parquet", SearchOption.AllDirectories).Append(Path.Combine(h.Engine.DataRoot, "meta.db")))
        {
            var bytes = File.ReadAllBytes(file);
            foreach (var secret in new[] { h.Attorney("ann"), h.Client() })
            {
                bytes.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(secret)).ShouldBe(-1, $"{secret} in clear in {file}");
            }
        }

        var row = h.Services.Query.Query("SELECT attorney_email, client_id, client_key FROM reminders.attorney_events LIMIT 1").Rows[0];
        ((string)row[0]!).ShouldStartWith("enc1:");
        ((string)row[1]!).ShouldStartWith("enc1:");
        ((string)row[2]!).Length.ShouldBe(32);
        h.Engine.Count($"SELECT count(*) FROM reminders.source_event WHERE payload LIKE 'enc1:%'").ShouldBe(2);
    }

    [Fact]
    public async Task With_client_id_hashed_only_the_key_is_stored_and_the_mail_names_a_pseudonym()
    {
        using var h = new ReminderHarness(editStore: s => s.Replace("client_id: encrypt ", "client_id: hash ", StringComparison.Ordinal));
        h.Options.Store.ClientId.ShouldBe(ClientIdProtection.Hash);
        await h.LandAsync("mongo", h.Mongo("A", T0));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1)));

        (await h.EvaluateAsync(T0 + Month)).RowsOut.ShouldBe(1);

        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events WHERE client_id IS NULL AND length(client_key) = 32").ShouldBe(2);
        var subject = h.Mails().Single().Subject!;
        subject.ShouldNotContain(h.Client());
        subject.ShouldContain($"(#{ClientKey(h)[..12]})");
    }

    [Fact]
    public async Task The_ready_view_shows_what_is_due_now_in_sluice_query()
    {
        using var h = new ReminderHarness();
        await h.LandAsync("mongo", h.Mongo("A", T0.AddDays(-40)), h.Mongo("B", T0.AddDays(10)));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(-39)), h.Salesforce("B", T0.AddDays(11)));
        await h.EvaluateAsync(T0.AddDays(-10) - TimeSpan.FromDays(1));

        // The view uses the wall clock (now()): A was due long ago and is not sent yet; B's due time is in the future of T0.
        var ready = h.Services.Query.Query($"SELECT case_id FROM reminders.vw_reminder_ready WHERE case_id LIKE 'CASE-{h.Tag}-%' ORDER BY 1").Rows;
        ready.Select(r => (string)r[0]!).ShouldBe([h.Case("A"), h.Case("B")]);
    }

    private static string ClientKey(ReminderHarness h)
    {
        using var protector = ReminderKeys.Load(h.Options.Store, h.Services.Data);
        return protector.Key(h.Client());
    }
}
