using System.Globalization;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The CLI as separate processes: SIGKILL between sending and recording, and runs that overlap.</summary>
public sealed class ReminderCrashTests
{
    private static readonly DateTimeOffset Due = T0 + TimeSpan.FromDays(30);

    [Fact]
    public async Task Killed_between_sending_and_recording_no_second_mail_on_restart_and_a_replay_is_the_operators_choice()
    {
        using var h = new ReminderHarness();
        using var slow = new ThrowawaySmtp(holdSeconds: 300);
        using var normal = new ThrowawaySmtp();
        await slow.StartAsync();
        await normal.StartAsync();
        await h.LandAsync("mongo", h.Mongo("A", T0, attorney: "a"), h.Mongo("B", T0.AddHours(1), attorney: "b"));
        await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1), attorney: "a"), h.Salesforce("B", T0.AddDays(1), attorney: "b"));
        var now = Iso(Due + TimeSpan.FromHours(2));

        // The slow server stores the message, then takes its time to answer 250: the process is killed in between.
        using (var run = SluiceProcess.Start(h.Engine.DataRoot, Smtp(slow), "job", "run", "repeat-reminder/send-reminders", "--now", now))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (slow.MailCount == 0 && DateTime.UtcNow < deadline && !run.HasExited) { await Task.Delay(20); }
            slow.MailCount.ShouldBe(1, run.Stderr);
            run.Kill();
        }

        var restart = await RunAsync(h, Smtp(normal), "job", "run", "repeat-reminder/send-reminders", "--now", now);
        restart.Out.ShouldContain("1 sent");
        restart.Out.ShouldContain("1 left in flight by a stopped run marked unconfirmed");
        Mails(slow, normal, h.Attorney("a")).Count.ShouldBe(1, "the message the server may have: not sent again");
        Mails(slow, normal, h.Attorney("b")).Count.ShouldBe(1, "the reminder that was only claimed: sent after the restart");
        (await RunAsync(h, Smtp(normal), "job", "run", "repeat-reminder/send-reminders", "--now", now)).Out.ShouldContain("0 sent");

        var letters = await RunAsync(h, Smtp(normal), "dlq", "list");
        letters.Out.ShouldContain("delivery unconfirmed");
        letters.Out.ShouldContain(h.Case("A"));
        (await RunAsync(h, Smtp(normal), "dlq", "replay", "--all", "--source", "mail:")).Out.ShouldContain("1 replayed");
        (await RunAsync(h, Smtp(normal), "job", "run", "repeat-reminder/send-reminders", "--now", now)).Out.ShouldContain("1 sent");
        var toA = Mails(slow, normal, h.Attorney("a"));
        toA.Count.ShouldBe(2, "the operator replayed it");
        toA.Select(m => m.MessageId).Distinct().Count().ShouldBe(1, "with the same Message-ID, the idempotency key a mailbox can dedupe on");
    }

    [Fact]
    public async Task Two_processes_evaluating_at_once_send_each_reminder_once()
    {
        using var h = new ReminderHarness();
        var cases = Enumerable.Range(0, 30).Select(i => string.Create(CultureInfo.InvariantCulture, $"p{i}")).ToList();
        await h.LandAsync("mongo", cases.Select(c => h.Mongo(c, T0, attorney: c)).ToArray());
        await h.LandAsync("salesforce", cases.Select(c => h.Salesforce(c, T0.AddDays(1), attorney: c)).ToArray());
        var env = new Dictionary<string, string> { ["SMTP_HOST"] = ServerSettings.SmtpHost, ["SMTP_PORT"] = ServerSettings.SmtpPort.ToString(CultureInfo.InvariantCulture), ["SMTP_TLS"] = "none" };

        using var first = SluiceProcess.Start(h.Engine.DataRoot, env, "job", "run", "repeat-reminder/send-reminders", "--now", Iso(Due + TimeSpan.FromHours(1)));
        using var second = SluiceProcess.Start(h.Engine.DataRoot, env, "job", "run", "repeat-reminder/send-reminders", "--now", Iso(Due + TimeSpan.FromHours(1)));
        (await first.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, first.Stderr);
        (await second.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, second.Stderr);

        foreach (var c in cases)
        {
            h.Mails(c).Count.ShouldBe(1, c);
        }

        (first.Stdout + second.Stdout).ShouldContain("30 sent");
    }

    private static Dictionary<string, string> Smtp(ThrowawaySmtp server) => new()
    {
        ["SMTP_HOST"] = "127.0.0.1",
        ["SMTP_PORT"] = server.Port.ToString(CultureInfo.InvariantCulture),
        ["SMTP_TLS"] = "none",
    };

    private static async Task<(int Code, string Out, string Err)> RunAsync(ReminderHarness h, Dictionary<string, string> env, params string[] args)
    {
        using var p = SluiceProcess.Start(h.Engine.DataRoot, env, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        code.ShouldBe(0, $"{string.Join(' ', args)}\n{p.Stdout}\n{p.Stderr}");
        return (code, p.Stdout, p.Stderr);
    }

    private static List<MimeKit.MimeMessage> Mails(ThrowawaySmtp a, ThrowawaySmtp b, string to) =>
        MailFolder.To(a.MailDir, to).Concat(MailFolder.To(b.MailDir, to)).ToList();
}
