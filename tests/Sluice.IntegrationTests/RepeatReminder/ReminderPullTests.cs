using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Sluice.IntegrationTests.Support;
using Sluice.Connectors.Pull;
using Sluice.Recipes.Reminders.Pull;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The pull path: incremental extraction with a watermark and an overlap, against a fake Salesforce API and a real PostgreSQL.</summary>
public sealed class ReminderPullTests
{
    [Fact]
    public async Task Salesforce_pull_pages_recovers_its_token_and_resumes_from_the_watermark_without_gaps_or_repeats()
    {
        await using var sf = await FakeSalesforce.StartAsync();
        var idVar = $"SLUICE_TEST_SF_ID_{Guid.NewGuid():N}";
        var secretVar = $"SLUICE_TEST_SF_SECRET_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(idVar, FakeSalesforce.ClientId);
        Environment.SetEnvironmentVariable(secretVar, FakeSalesforce.Secret);
        using var h = new ReminderHarness(recipe => recipe.Replace("pipelines:\n", $"""
            pipelines:
              salesforce-api:
                source:
                  type: salesforce
                  login_url: {sf.Url}
                  client_id_env: {idVar}
                  client_secret_env: {secretVar}
                  object: Attorney_Event__c
                  fields: [Event_Type__c, Event_Timestamp__c, Case_Id__c, Client_Id__c, Attorney_Email__c, Status__c, Confidence_Score__c]
                  mapping: mappings/salesforce-api.yaml
                  overlap: 5m

            """, StringComparison.Ordinal));
        var t = T0.UtcDateTime;
        for (var i = 0; i < 120; i++)
        {
            sf.Add($"a{i:D4}", t.AddSeconds(10 * i), Fields(h, i, t.AddSeconds(10 * i)));
        }

        sf.Add("bad", t.AddSeconds(5), new Dictionary<string, object?> { ["Case_Id__c"] = "x", ["Client_Id__c"] = "y", ["Event_Timestamp__c"] = "2025-07-01T09:00:00Z" });
        sf.ExpireTokenOnce = true;
        sf.FailNextRequests = 1;

        var first = await PullAsync(h);
        first.ShouldBe(3, "121 records in pages of 50");
        sf.TokensIssued.ShouldBe(2, "the expired session was renewed once");
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(120);
        var letter = h.Services.DeadLetters.List("salesforce:repeat-reminder/salesforce-api").Single();
        letter.Reason.ShouldBe("salesforce: field 'Attorney_Email__c': missing required field 'Attorney_Email__c'");
        letter.Position.ShouldStartWith("bad modified 2025-07-01T09:00:05");

        // Later: new records, new versions of old ones, and changes committed late with a stamp inside the overlap.
        var high = t.AddSeconds(10 * 119);
        for (var i = 120; i < 130; i++) { sf.Add($"a{i:D4}", high.AddMinutes(1).AddSeconds(i), Fields(h, i, high.AddMinutes(1))); }
        for (var i = 0; i < 5; i++) { sf.Add($"a{i:D4}", high.AddMinutes(2), Fields(h, i, high.AddMinutes(2))); }
        for (var i = 0; i < 3; i++) { sf.Add($"late{i}", high.AddMinutes(-3), Fields(h, 500 + i, high.AddMinutes(-3))); }

        var second = await PullAsync(h);
        second.ShouldBeGreaterThan(0);
        sf.Queries.Last().ShouldContain($"SystemModstamp >= {high.AddMinutes(-5):yyyy-MM-dd'T'HH:mm:ss'Z'}", Case.Sensitive, "the next pull starts at the watermark minus the overlap");
        (await PullAsync(h)).ShouldBe(0, "nothing new: nothing lands");

        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(120 + 10 + 5 + 3);
        h.Engine.Count("SELECT count(DISTINCT position) FROM reminders.source_event").ShouldBe(121 + 18);
        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(121 + 18, "no record landed twice");
        h.Services.DeadLetters.List("salesforce:repeat-reminder/salesforce-api").Count.ShouldBe(1);
    }

    [Fact]
    public async Task Postgres_table_pull_killed_mid_way_resumes_without_gaps_or_repeats()
    {
        var table = $"rr_mongo_{Guid.NewGuid():N}"[..24];
        await using var pg = NpgsqlDataSource.Create(ServerSettings.PostgresConnectionString);
        await Exec(pg, $"""
            CREATE TABLE {table} (_id text PRIMARY KEY, type text, event_timestamp timestamptz, case_id text, client_id text,
                attorney_email text, status text, confidence_score double precision, case_type text, case_last_action text, updated_at timestamptz NOT NULL);
            INSERT INTO {table}
            SELECT 'm' || lpad(g::text, 6, '0'), CASE WHEN g % 2 = 0 THEN 'Service_Closure' ELSE 'note' END,
                   timestamptz '2025-07-01 00:00:00+00' + g * interval '1 second', 'CASE-' || (g % 5000), 'CLIENT-' || (g % 50),
                   CASE WHEN g % 2500 = 7 THEN NULL ELSE 'att' || (g % 40) || '@example.test' END, 'closed', 0.5, 'Immigration', 'closed the file',
                   timestamptz '2025-07-02 00:00:00+00' + (g / 3) * interval '1 second'
            FROM generate_series(1, 6000) g;
            """);

        // The pull reads a view of the table whose fourth page query waits for an advisory lock this test holds, so
        // the kill lands mid-pull however fast the machine is (the gate is an InitPlan: evaluated once per query).
        var gateKey = Random.Shared.NextInt64(1, long.MaxValue);
        await Exec(pg, $"""
            CREATE SEQUENCE {table}_pages;
            CREATE FUNCTION {table}_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
              IF nextval('{table}_pages') > 3 THEN PERFORM pg_advisory_xact_lock_shared({gateKey}); END IF;
              RETURN true;
            END $$;
            CREATE VIEW {table}_v AS SELECT * FROM {table} WHERE (SELECT {table}_gate());
            """);
        await using var gate = await pg.OpenConnectionAsync();
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_lock({gateKey})", gate))
        {
            await lockCmd.ExecuteNonQueryAsync();
        }

        try
        {
            using var h = new ReminderHarness(recipe => recipe.Replace("pipelines:\n", $"""
                pipelines:
                  mongo-table:
                    source:
                      type: postgres_pull
                      table: public.{table}_v
                      key_column: _id
                      updated_column: updated_at
                      page_size: 200
                      mapping: mappings/mongo.yaml
                      overlap: 5m

                """, StringComparison.Ordinal));

            using (var run = SluiceProcess.Start(h.Engine.DataRoot, "run", h.RecipeFolder, "--once"))
            {
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (Landed(h) == 0 && DateTime.UtcNow < deadline && !run.HasExited) { await Task.Delay(10); }
                run.HasExited.ShouldBeFalse("the pull waits at its fourth page until the kill");
                run.Kill();
            }

            var atKill = Landed(h);
            atKill.ShouldBeGreaterThan(0);
            atKill.ShouldBeLessThanOrEqualTo(600, "three pages of 200 landed at most: the kill landed mid-pull");
            await using (var unlock = new NpgsqlCommand($"SELECT pg_advisory_unlock({gateKey})", gate))
            {
                await unlock.ExecuteNonQueryAsync();
            }

            var restart = await SluiceProcess.RunAsync(h.Engine.DataRoot, "run", h.RecipeFolder, "--once");
            restart.Code.ShouldBe(0, restart.Err);

            h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(5_997);
            h.Engine.Count("SELECT count(DISTINCT source_id) FROM reminders.attorney_events").ShouldBe(5_997);
            h.Engine.Count("SELECT count(*) FROM reminders.attorney_events WHERE event_type = 'service_closure'").ShouldBe(3_000);
            h.Services.DeadLetters.List("postgres_pull:repeat-reminder/mongo-table").Count.ShouldBe(3, "rows 7, 2507 and 5007 have no attorney_email");

            // New versions of 100 rows, 50 new rows, and 20 rows committed late with a time inside the overlap.
            await Exec(pg, $"""
                UPDATE {table} SET status = 'reopened', updated_at = timestamptz '2025-07-02 00:40:00+00' WHERE _id <= 'm000100';
                INSERT INTO {table} SELECT 'n' || g, 'note', timestamptz '2025-07-05 00:00:00+00', 'CASE-N', 'CLIENT-N', 'n@example.test', 'open', 0.1, 'x', 'y',
                    timestamptz '2025-07-02 00:40:00+00' + g * interval '1 millisecond' FROM generate_series(1, 50) g;
                INSERT INTO {table} SELECT 'late' || g, 'note', timestamptz '2025-07-05 00:00:00+00', 'CASE-L', 'CLIENT-L', 'l@example.test', 'open', 0.1, 'x', 'y',
                    timestamptz '2025-07-02 00:30:00+00' FROM generate_series(1, 20) g;
                """);
            var again = await SluiceProcess.RunAsync(h.Engine.DataRoot, "run", h.RecipeFolder, "--once");
            again.Code.ShouldBe(0, again.Err);
            (await SluiceProcess.RunAsync(h.Engine.DataRoot, "run", h.RecipeFolder, "--once")).Code.ShouldBe(0);

            h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(5_997 + 99 + 50 + 20, "m000007 is still without attorney_email");
            h.Engine.Count("SELECT count(*) FROM reminders.attorney_events WHERE status = 'reopened'").ShouldBe(99);
            h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(6_000 + 170, "every row version once, the refused ones included");
            h.Services.DeadLetters.List("postgres_pull:repeat-reminder/mongo-table").Count.ShouldBe(4);
        }
        finally
        {
            await Exec(pg, $"DROP TABLE IF EXISTS {table} CASCADE; DROP FUNCTION IF EXISTS {table}_gate(); DROP SEQUENCE IF EXISTS {table}_pages");
        }
    }

    private static long Landed(ReminderHarness h)
    {
        try
        {
            return h.Engine.Count("SELECT count(*) FROM reminders.attorney_events");
        }
        catch (Core.SluiceException)
        {
            return 0;
        }
    }

    private static Dictionary<string, object?> Fields(ReminderHarness h, int i, DateTime at) => new()
    {
        ["Event_Type__c"] = "attorney actions",
        ["Event_Timestamp__c"] = at.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture),
        ["Case_Id__c"] = h.Case(i.ToString(CultureInfo.InvariantCulture)),
        ["Client_Id__c"] = h.Client(),
        ["Attorney_Email__c"] = h.Attorney("sf"),
        ["Status__c"] = "Likely to Repeat",
        ["Confidence_Score__c"] = 0.9,
    };

    /// <summary>Runs a fresh pull source (as after a restart), moving the fake clock along for its retry pauses.</summary>
    private static async Task<int> PullAsync(ReminderHarness h)
    {
        var source = (IncrementalPullSource)h.Recipe.Pipelines.Single(p => p.SourceType == "salesforce").Create(h.Services, h.Recipe.Name);
        await using (source)
        {
            return await WithClock(h.Clock, source.RunOnceAsync(CancellationToken.None));
        }
    }

    private static async Task<T> WithClock<T>(FakeTimeProvider clock, Task<T> task)
    {
        while (!task.IsCompleted)
        {
            await Task.WhenAny(task, Task.Delay(20));
            clock.Advance(TimeSpan.FromMilliseconds(500));
        }

        return await task;
    }

    private static async Task Exec(NpgsqlDataSource pg, string sql)
    {
        await using var cmd = pg.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
