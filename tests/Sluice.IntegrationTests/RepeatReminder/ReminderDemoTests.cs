using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.RepeatReminder;

public sealed class ReminderDemoTests
{
    [Fact]
    public async Task Demo_pushes_events_runs_the_rule_and_shows_the_mails_its_own_smtp_catcher_received()
    {
        using var data = new TempFolder("sluice-demo-reminders");
        // No SMTP server configured: the demo must bring its own.
        using var demo = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SMTP_HOST"] = "" }, "demo", "--interval", "1", "--port", "0");

        await demo.WaitForOutputAsync("repeat-reminder: streams salesforce and mongo on http://127.0.0.1:", TimeSpan.FromSeconds(60));
        await demo.WaitForOutputAsync("mail    to attorney", TimeSpan.FromSeconds(60));
        await demo.WaitForOutputAsync("job     repeat-reminder/send-reminders: ", TimeSpan.FromSeconds(90));
        demo.Stdout.ShouldContain("the demo's own SMTP catcher");
        var mails = Directory.EnumerateFiles(Path.Combine(data.Path, "repeat-reminder", "mail"), "*.eml").ToList();
        mails.ShouldNotBeEmpty();
        File.ReadAllText(mails[0]).ShouldContain("Subject: Repeat client: follow up on case CASE-");

        (await demo.StopAsync()).ShouldBe(0, demo.Stderr);
        demo.Stdout.ShouldContain("repeat-reminder stopped after");
        var sent = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) > 0 AS ok FROM reminders.attorney_reminder WHERE status = 'sent'", "--format", "csv");
        sent.Out.ShouldBe("ok\ntrue\n", sent.Err);
    }
}
