using System.Globalization;
using Npgsql;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// repeat-reminder's <c>postgres_pull</c> source on a server of the test's own that is SIGKILLed while a pull waits
/// for its fourth page, and started again: the run does not stop (a lost server is transient), the next poll resumes
/// from the last committed watermark, and every row of the table lands exactly once.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class PullServerRestartTests
{
    private const int Rows = 6_000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task The_pulled_tables_server_killed_mid_pull_and_restarted_does_not_stop_the_run_and_pulls_every_row_once()
    {
        await using var pg = new ThrowawayPostgres();
        await pg.StartAsync();
        var table = $"rr_pull_{Guid.NewGuid():N}"[..20];
        var gateKey = Random.Shared.NextInt64(1, long.MaxValue);
        // The fourth page query waits for an advisory lock the test holds (an InitPlan: evaluated once per query), so
        // the kill lands mid-pull with three pages committed however fast the machine is.
        await ExecAsync(pg, $"""
            CREATE TABLE {table} (_id text PRIMARY KEY, type text, event_timestamp timestamptz, case_id text, client_id text,
                attorney_email text, status text, confidence_score double precision, case_type text, case_last_action text, updated_at timestamptz NOT NULL);
            INSERT INTO {table}
            SELECT 'm' || lpad(g::text, 6, '0'), 'note', timestamptz '2025-07-01 00:00:00+00' + g * interval '1 second', 'CASE-' || (g % 500),
                   'CLIENT-' || (g % 50), 'att' || (g % 40) || '@example.test', 'closed', 0.5, 'Immigration', 'closed the file',
                   timestamptz '2025-07-02 00:00:00+00' + (g / 3) * interval '1 second'
            FROM generate_series(1, {Rows}) g;
            CREATE SEQUENCE {table}_pages;
            CREATE FUNCTION {table}_gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
              IF nextval('{table}_pages') > 3 THEN PERFORM pg_advisory_xact_lock_shared({gateKey}); END IF;
              RETURN true;
            END $$;
            CREATE VIEW {table}_v AS SELECT * FROM {table} WHERE (SELECT {table}_gate());
            """);
        var gate = new NpgsqlConnection(pg.ConnectionString() + ";Pooling=false");
        await gate.OpenAsync();
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_lock({gateKey})", gate))
        {
            await lockCmd.ExecuteNonQueryAsync();
        }

        using var h = new ReminderHarness(recipe => recipe.Replace("pipelines:\n", $"""
            pipelines:
              mongo-table:
                source:
                  type: postgres_pull
                  table: public.{table}_v
                  key_column: _id
                  updated_column: updated_at
                  page_size: 200
                  poll_interval: 1s
                  mapping: mappings/mongo.yaml
                  overlap: 5m

            """, StringComparison.Ordinal));
        var env = new Dictionary<string, string>
        {
            ["PGHOST"] = "127.0.0.1", ["PGPORT"] = pg.Port.ToString(CultureInfo.InvariantCulture), ["PGUSER"] = "sluice", ["PGDATABASE"] = "postgres",
        };
        using var run = SluiceProcess.Start(h.Engine.DataRoot, env, "run", h.RecipeFolder, "--port", "0");
        await WaitUntilAsync(() => Landed(h) == 600 || run.HasExited, () => $"{Landed(h)} landed", run);
        run.HasExited.ShouldBeFalse("the pull waits at its fourth page until the kill");
        var atKill = Landed(h);

        await pg.KillAsync();
        await gate.DisposeAsync();
        // The run notices (the page query fails, then the next polls are refused) and says so, without stopping.
        await WaitUntilAsync(() => run.Stdout.Contains("pull failed", StringComparison.Ordinal) || run.Stderr.Contains("pull failed", StringComparison.Ordinal) || run.HasExited,
            () => "no 'pull failed' warning", run);
        run.HasExited.ShouldBeFalse("a lost source server is transient: the run goes on");
        await pg.StartAsync();

        await WaitUntilAsync(() => Landed(h) == Rows || run.HasExited, () => $"{Landed(h)} of {Rows} landed", run);
        run.HasExited.ShouldBeFalse("the run resumed by itself");
        (await run.StopAsync()).ShouldBe(0, run.Stderr);

        var events = h.Engine.Count("SELECT count(*) FROM reminders.attorney_events");
        var distinct = h.Engine.Count("SELECT count(DISTINCT source_id) FROM reminders.attorney_events");
        var sourceEvents = h.Engine.Count("SELECT count(*) FROM reminders.source_event");
        ChaosFigures.Record(nameof(The_pulled_tables_server_killed_mid_pull_and_restarted_does_not_stop_the_run_and_pulls_every_row_once), "repeat-reminder",
            "postgres (pulled table) SIGKILL mid-pull, restarted", Rows, Rows, events, events - distinct, Rows - distinct,
            $"{atKill} rows landed at the kill (three pages of 200); source_event rows {sourceEvents}; the run did not stop");
        events.ShouldBe(Rows);
        distinct.ShouldBe(Rows);
        sourceEvents.ShouldBe(Rows, "every row version landed once");
        h.Services.DeadLetters.List("postgres_pull:repeat-reminder/mongo-table").ShouldBeEmpty();
    }

    private static async Task WaitUntilAsync(Func<bool> done, Func<string> state, SluiceProcess run)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!done())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"after {Patience.TotalSeconds:0} s: {state()}\nstderr:\n{run.Stderr}"); }
            await Task.Delay(50);
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

    private static async Task ExecAsync(ThrowawayPostgres pg, string sql)
    {
        await using var connection = new NpgsqlConnection(pg.ConnectionString() + ";Pooling=false");
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync();
    }
}
