using System.Globalization;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// repeat-reminder's <c>send_reminders</c> job every minute on <c>sluice run --cluster</c> workers (issue 18: one runner
/// per job at a time; a job whose runner dies shows as interrupted, then is re-run), its store the lake zone as shipped
/// (the cluster's lake, <c>SLUICE_CLUSTER_FOLDER</c>), fed by its mapped pull of a PostgreSQL table of Mongo-shaped
/// closures, its outbox in the shared metadata store. A first worker alone is SIGKILLed in a run just after the SMTP
/// server accepted its fifth mail and before it recorded that (crash point <c>reminder.sent:5</c>); three workers
/// started next show that run interrupted and re-run its slot once on another worker, which settles the fifth as
/// unconfirmed (a dead letter, not sent again) and mails the rest; closures added later are mailed by later slots.
/// Every reminder is mailed exactly once across the four processes.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterRemindersTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(240); // a worker start (100 s at load 110) and a minute's slot
    private const string Job = "repeat-reminder/send-reminders";

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-cluster-reminders");
    private readonly ThrowawaySmtp _smtp = new();
    private readonly string _database = "cr_" + Guid.NewGuid().ToString("N")[..12];

    public void Dispose()
    {
        ClusterProbes.DropDatabase(_database);

        _smtp.Dispose();
        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Each_due_reminder_is_mailed_once_across_workers_and_a_runner_killed_mid_send_is_interrupted_rerun_and_its_send_left_unconfirmed()
    {
        await _smtp.StartAsync();
        await ClusterProbes.ExecuteAsync(ServerSettings.PostgresConnectionString, $"CREATE DATABASE {_database}");
        var source = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = _database }.ConnectionString;
        await ClusterProbes.ExecuteAsync(source, """
            CREATE TABLE mongo_events (_id text PRIMARY KEY, type text, event_timestamp timestamptz, case_id text, client_id text,
                attorney_email text, status text, confidence_score double precision, case_type text, case_last_action text,
                updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
            """);
        await ClosuresAsync(source, 0, 40);

        var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(_database));
        env[SharedMetadata.FolderVariable] = Directory.CreateDirectory(_temp.Sub("shared")).FullName;
        env[PartitionLeases.DurationVariable] = "5";
        // Long enough that a renewal delayed on a loaded machine does not lose a live run's lease.
        env[JobLeases.TtlVariable] = "10";
        env["SLUICE_REMINDER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        env["SMTP_HOST"] = "127.0.0.1";
        env["SMTP_PORT"] = _smtp.Port.ToString(CultureInfo.InvariantCulture);
        env["SMTP_TLS"] = "none";
        var recipe = WriteRecipe();

        // Alone, it lands the closures and mails them in its slots' runs, until the fifth mail's 250 kills it unrecorded.
        var doomedEnv = new Dictionary<string, string>(env) { [Sluice.Core.CrashPoint.Variable] = "reminder.sent:5" };
        int doomedPid;
        using (var doomed = SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub("doomed")).FullName, doomedEnv, "run", recipe, "--cluster", "--port", "0"))
        {
            doomedPid = doomed.Pid;
            await ClusterProbes.UntilAsync(() => Task.FromResult((doomed.HasExited, true)), "the first worker at its crash point", [], Patience);
            doomed.Stderr.ShouldContain("killed at reminder.sent");
        }

        var (slot, runnerPid) = (await RowsAsync("SELECT as_of, pid FROM job_runs WHERE status = 'running'", r => (r.GetString(0), r.GetInt64(1)))).ShouldHaveSingleItem();
        runnerPid.ShouldBe(doomedPid);
        (await RowsAsync("SELECT count(*) FROM reminder_outbox WHERE status = 'sending'", r => r.GetInt64(0))).ShouldBe([1L], "the fifth mail: accepted by the server, not recorded");
        _smtp.MailCount.ShouldBe(5);

        var workers = ClusterWorker.StartAll(_temp, 3, recipe, env);
        try
        {
            foreach (var w in workers) { await w.WaitHealthyAsync(); }
            await ClusterProbes.UntilAsync(async () => ((await RowsAsync($"SELECT status FROM job_runs WHERE as_of = '{slot}' AND trigger = 'rerun'", r => r.GetString(0))) is [JobRunStore.Succeeded], true),
                "the killed run's slot re-run", workers, Patience);

            // Closures landed now are mailed by a later slot, by whichever worker claims it.
            await ClosuresAsync(source, 40, 20);
            await ClusterProbes.UntilAsync(async () => ((await StatusesAsync()) == "sent:59,unconfirmed:1", true), "every reminder settled", workers, Patience);
            var settledAt = DateTimeOffset.UtcNow;
            // A slot that started after that finds nothing more to send.
            await ClusterProbes.UntilAsync(async () => ((await RowsAsync(
                $"SELECT id FROM job_runs WHERE trigger = 'schedule' AND status = '{JobRunStore.Succeeded}' AND started_at > '{settledAt.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'}'", r => r.GetInt64(0))).Count > 0, true),
                "a slot after every reminder settled", workers, Patience);

            var mails = MailFolder.To(_smtp.MailDir, "@example.test");
            var keys = mails.Select(m => m.Headers["X-Sluice-Reminder-Key"]).ToList();
            keys.Count.ShouldBe(60, "one mail per closure, the unconfirmed one's included (the server had it)");
            keys.Distinct().Count().ShouldBe(60, "no reminder mailed twice");
            mails.Select(m => m.To.Mailboxes.Single().Address).Order(StringComparer.Ordinal)
                .ShouldBe(Enumerable.Range(0, 60).Select(g => $"att{g:D3}@example.test").Order(StringComparer.Ordinal), "each closure's attorney once");

            var runs = await RowsAsync($"SELECT trigger, status, pid FROM job_runs WHERE as_of = '{slot}' ORDER BY id", r => (r.GetString(0), r.GetString(1), r.GetInt64(2)));
            runs.Count.ShouldBe(2, string.Join("; ", runs));
            runs[0].ShouldBe(("schedule", JobRunStore.Interrupted, (long)doomedPid), "the slot fired once, on the killed worker");
            (runs[1].Item1, runs[1].Item2).ShouldBe(("rerun", JobRunStore.Succeeded), "re-run once");
            runs[1].Item3.ShouldNotBe(doomedPid);
            (await RowsAsync("SELECT count(*) FROM job_runs WHERE trigger = 'rerun'", r => r.GetInt64(0))).ShouldBe([1L], "only the killed run's slot was re-run");
            (await RowsAsync("SELECT count(*) - count(DISTINCT as_of) FROM job_runs WHERE trigger = 'schedule'", r => r.GetInt64(0))).ShouldBe([0L], "each slot fired once across the workers");

            var letters = await RowsAsync("SELECT reason FROM dead_letters WHERE source = 'mail:repeat-reminder/send-reminders'", r => r.GetString(0));
            letters.ShouldHaveSingleItem().ShouldContain("delivery unconfirmed");
            foreach (var w in workers) { w.Process!.HasExited.ShouldBeFalse(w.Stderr); }
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
        }
    }

    /// <summary>repeat-reminder with its pull of <c>mongo_events</c> (every second) and its job every minute; a closure is due a minute after it.</summary>
    private string WriteRecipe()
    {
        var recipe = RecipeVariant.Create(_temp, "repeat-reminder");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), """
            name: repeat-reminder
            pipelines:
              mongo-table:
                source:
                  type: postgres_pull
                  table: public.mongo_events
                  key_column: _id
                  updated_column: updated_at
                  page_size: 50
                  poll_interval: 1s
                  overlap: 5m
                  mapping: mappings/mongo.yaml
            jobs:
              send-reminders:
                type: send_reminders
                schedule: "* * * * *"
                store: store.yaml
                rule:
                  closure: {sources: [mongo], event_type: service_closure}
                  likely: {sources: [mongo], status: Likely to Repeat, min_confidence: 0.7}
                  delay: PT1M
                smtp:
                  host: 127.0.0.1
                  port: 25
                  tls: none
                  from: Sluice reminders <reminders@sluice.local>
            """);
        return recipe;
    }

    /// <summary>Closures of cases <paramref name="from"/>.. (attorney <c>att&lt;n&gt;@example.test</c>), long past and likely to repeat, so each is due.</summary>
    private static Task ClosuresAsync(string source, int from, int count) => ClusterProbes.ExecuteAsync(source, $"""
        INSERT INTO mongo_events (_id, type, event_timestamp, case_id, client_id, attorney_email, status, confidence_score, case_type, case_last_action)
        SELECT 'm' || lpad(g::text, 6, '0'), 'service_closure', timestamptz '2026-07-01 00:00:00+00' + g * interval '1 second', 'CASE-' || g, 'CLIENT-' || g,
               'att' || lpad(g::text, 3, '0') || '@example.test', 'Likely to Repeat', 0.9, 'Immigration', 'closed the file'
        FROM generate_series({from}, {from + count - 1}) g
        """);

    /// <summary>The outbox's reminders by status (<c>sent:59,unconfirmed:1</c>).</summary>
    private async Task<string> StatusesAsync() => string.Join(",",
        await RowsAsync("SELECT status || ':' || count(*) FROM reminder_outbox GROUP BY status ORDER BY status", r => r.GetString(0)));

    /// <summary>Rows of the cluster's shared metadata schema (none before its tables are made).</summary>
    private Task<List<T>> RowsAsync<T>(string sql, Func<NpgsqlDataReader, T> read) =>
        ClusterProbes.RowsAsync(_fixture.Shared("probe").ConnectionString(), sql, read, "job_runs", "reminder_outbox");
}
