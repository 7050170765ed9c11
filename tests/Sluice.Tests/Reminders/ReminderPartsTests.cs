using System.Security.Cryptography;
using Sluice.Core;
using Sluice.Recipes.Reminders.Jobs;
using Sluice.Recipes.Reminders;
using Sluice.Connectors.Pull;
using Sluice.Recipes.Reminders.Pull;

namespace Sluice.Tests.Reminders;

public sealed class ReminderPartsTests
{
    [Fact]
    public void Protected_values_hide_the_text_keys_are_stable_and_only_the_same_key_decrypts()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        using var protector = new FieldProtector(key);
        using var again = new FieldProtector(key);
        using var other = new FieldProtector(RandomNumberGenerator.GetBytes(32));

        var cipher = protector.Encrypt("someone@example.com"u8);
        cipher.ShouldStartWith("enc1:");
        cipher.ShouldNotContain("someone");
        again.Decrypt(cipher).ShouldBe("someone@example.com");
        protector.Encrypt("someone@example.com"u8).ShouldNotBe(cipher, "a fresh nonce each time");
        protector.Key("CLIENT-1").ShouldBe(again.Key("CLIENT-1"));
        protector.Key("CLIENT-1").ShouldNotBe(other.Key("CLIENT-1"));
        Should.Throw<SluiceException>(() => other.Decrypt(cipher)).Message.ShouldContain("encrypted with key");
        var tampered = cipher[..^2] + (cipher[^2] == 'A' ? "B" : "A") + cipher[^1];
        Should.Throw<SluiceException>(() => protector.Decrypt(tampered)).Message.ShouldContain("does not authenticate");
    }

    [Fact]
    public void Watermark_rereads_the_overlap_and_skips_only_what_landed()
    {
        var t0 = new DateTime(2025, 7, 1, 12, 0, 0, DateTimeKind.Utc);
        var overlap = TimeSpan.FromMinutes(5);
        var wm = PullWatermark.Empty.Advance([("a", t0), ("b", t0.AddMinutes(3)), ("c", t0.AddMinutes(10))], overlap);

        wm.Since(overlap).ShouldBe(t0.AddMinutes(5));
        wm.Landed("c", t0.AddMinutes(10)).ShouldBeTrue();
        wm.Landed("c", t0.AddMinutes(11)).ShouldBeFalse("a newer version of a record is a new change");
        wm.Landed("a", t0).ShouldBeFalse("below the overlap nothing is remembered (nor re-read)");
        var back = PullWatermark.Parse(wm.ToJson());
        back.High.ShouldBe(wm.High);
        back.Landed("c", t0.AddMinutes(10)).ShouldBeTrue();
    }

    [Fact]
    public void Watermark_set_is_bounded_by_raising_the_floor_over_whole_stamps()
    {
        var t0 = new DateTime(2025, 7, 1, 12, 0, 0, DateTimeKind.Utc);
        var records = Enumerable.Range(0, PullWatermark.MaxSeen + 10).Select(i => ($"r{i}", t0.AddMilliseconds(i / 2))).ToList();

        var wm = PullWatermark.Empty.Advance(records, TimeSpan.FromHours(1));

        wm.Seen.Count.ShouldBeLessThanOrEqualTo(PullWatermark.MaxSeen);
        wm.Floor.ShouldNotBeNull();
        wm.Since(TimeSpan.FromHours(1)).ShouldBe(wm.Floor);
        records.Where(r => r.Item2 >= wm.Floor).ShouldAllBe(r => wm.Landed(r.Item1, r.Item2), "everything from the floor up is remembered");
    }

    [Fact]
    public void Templates_render_named_values_and_report_unknown_placeholders()
    {
        var template = new ReminderTemplate("Case {case_id} of {client_id}, closed {closure_date}; reminder {reminder} {oops}");

        template.Unknown().ShouldBe(["oops"]);
        template.Render(new ReminderFields("C-1", "CL-9", new DateTime(2025, 7, 1, 8, 0, 0, DateTimeKind.Utc), default, 0, "a@b.c", "r"))
            .ShouldBe("Case C-1 of CL-9, closed 2025-07-01; reminder 1 {oops}");
    }

    [Fact]
    public void Reminder_key_matches_the_sql_definition()
    {
        using var db = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT md5(concat_ws('|', 'send-reminders', 'abc', 'CASE-1', CAST(CAST(0 AS BIGINT) AS VARCHAR)))";

        ReminderRuleSql.Key("send-reminders", "abc", "CASE-1", 0).ShouldBe((string)cmd.ExecuteScalar()!);
    }
}
