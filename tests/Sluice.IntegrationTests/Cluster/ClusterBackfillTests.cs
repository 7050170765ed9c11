using System.Globalization;
using System.Text.RegularExpressions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;
using Npgsql;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// engagement-cdc's <c>postgres_backfill</c> job in cluster mode: its pages go through the cluster's log (the cdc
/// pipeline's change stream in JetStream) to the workers' sinks, its progress is in the shared store, and a runner
/// killed mid-backfill is taken over by a worker that resumes it (docs/SCALING.md, "Jobs").
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed partial class ClusterBackfillTests
{
    /// <summary>Generous: three workers, a CLI and DuckDB queries share two cores with other sessions' builds and tests.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    internal const int Rows = 3000;

    private const string Columns = "event_id, content_id, user_id, event_type, event_ts, duration_ms, device";

    [Fact]
    public async Task A_backfill_from_the_command_line_killed_after_a_stored_page_is_resumed_by_a_worker_and_every_sink_holds_each_row_once()
    {
        // The table's rows are all there before the slot exists and no snapshot is taken: the backfill is what brings
        // them to the sinks, the shared lake (which appends: a row stored twice in JetStream would be there twice) and a
        // PostgreSQL table keyed by event_id. Pages of 200 rows.
        await using var scenario = await CdcScenario.CreateAsync(tweak: Recipe);
        await scenario.InsertAsync(Rows, rowsPerStatement: 500, seed: 26);
        var cluster = "cbf" + scenario.Id;
        var env = Environment(scenario, cluster);
        var workers = new List<Worker>();
        try
        {
            for (var i = 0; i < 3; i++) { workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env)); }
            foreach (var w in workers) { await w.WaitStartedAsync(); }

            // `sluice backfill --cluster` from a folder no worker uses, SIGKILLed once JetStream stored its 5th page and
            // before it recorded it: the worker that resumes the backfill publishes that page again, with the same ids.
            using (var cli = SluiceProcess.StartIn(scenario.DataRoot, Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "cli")).FullName,
                new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = Sluice.Connectors.Postgres.PostgresBackfillJob.PagePublished + ":5" },
                "backfill", "engagement-cdc/backfill", "--from", "2000-01-01", "--to", "2099-12-31", "--cluster"))
            {
                await cli.WaitAsync(Patience);
                cli.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at " + Sluice.Connectors.Postgres.PostgresBackfillJob.PagePublished, customMessage: cli.Stdout);
            }

            // The run shows interrupted, and one worker re-runs it, resuming after the 4th page it recorded.
            var runs = await UntilAsync(async () =>
            {
                var found = await RunsAsync(cluster);
                return (found.Any(r => r.Trigger == "rerun" && r.Status != "running"), found);
            }, "a worker re-ran the interrupted backfill to its end", workers);
            runs.Select(r => (r.Trigger, r.Status)).ShouldBe([("backfill", "interrupted"), ("rerun", "succeeded")], string.Join("\n", runs));
            runs[1].Message.ShouldContain($"{Rows} rows of public.engagement_events");
            runs[1].Message.ShouldContain("resumed after event_id");
            string.Join("\n", workers.Select(w => w.Process.Stderr)).ShouldContain("resuming backfill");

            await EverySinkHoldsEachRowOnceAsync(scenario, env, workers);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
            await DeleteStreamAsync(cluster);
        }
    }

    [Fact]
    public async Task A_backfill_left_unfinished_with_no_worker_to_take_it_over_is_resumed_by_the_same_backfill_again_and_every_sink_holds_each_row_once()
    {
        // As above, but no worker runs while the first backfill dies, so none re-runs it: the operator runs the same
        // backfill again, which goes on under the same id after the 4th page it recorded, not anew (which would store
        // the first pages again, twice in the lake, which appends).
        await using var scenario = await CdcScenario.CreateAsync(tweak: Recipe);
        await scenario.InsertAsync(Rows, rowsPerStatement: 500, seed: 29);
        var cluster = "cbfa" + scenario.Id;
        var env = Environment(scenario, cluster);
        var workers = new List<Worker>();
        string[] backfill = ["backfill", "engagement-cdc/backfill", "--from", "2000-01-01", "--to", "2099-12-31", "--cluster"];
        try
        {
            var folder = Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "cli")).FullName;
            using (var cli = SluiceProcess.StartIn(scenario.DataRoot, folder, new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = Sluice.Connectors.Postgres.PostgresBackfillJob.PagePublished + ":5" }, backfill))
            {
                await cli.WaitAsync(Patience);
                cli.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at " + Sluice.Connectors.Postgres.PostgresBackfillJob.PagePublished, customMessage: cli.Stdout);
            }

            // It waits for the dead runner's job lease to expire (15 s).
            using (var again = SluiceProcess.StartIn(scenario.DataRoot, folder, env, backfill))
            {
                (await again.WaitAsync(Patience)).ShouldBe(0, again.Stderr);
                // Its progress starts at the 800 rows of the 4 pages of 200 the first recorded, not at the first page.
                again.Stderr.ShouldNotContain(" 200/3000", customMessage: again.Stderr);
                again.Stderr.ShouldContain("1000/3000", customMessage: again.Stderr);
            }

            var runs = await RunsAsync(cluster);
            runs.Where(r => r.Status == "succeeded").ShouldHaveSingleItem(string.Join("\n", runs)).Message.ShouldContain("resumed after event_id");

            for (var i = 0; i < 2; i++) { workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env)); }
            foreach (var w in workers) { await w.WaitStartedAsync(); }
            await EverySinkHoldsEachRowOnceAsync(scenario, env, workers);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
            await DeleteStreamAsync(cluster);
        }
    }

    /// <summary>
    /// The cluster's settings on the services' NATS and a shared folder: a killed worker's unacknowledged pages, and its
    /// partitions, go to the others within seconds; a dead runner's job lease expires after 15 s (renewed every 5 s:
    /// long enough that a loaded machine does not lose it).
    /// </summary>
    private static Dictionary<string, string> Environment(CdcScenario scenario, string cluster)
    {
        var env = scenario.ProcessEnvironment;
        foreach (var (k, v) in ClusterEnvironment.Of(cluster)) { env[k] = v; }
        env["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "shared")).FullName;
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        env["SLUICE_CLUSTER_LEASE"] = "5";
        env["SLUICE_CLUSTER_JOB_LEASE"] = "15";
        return env;
    }

    /// <summary>Every row of the source table in each sink (the postgres table and the shared lake), once, and nothing else.</summary>
    internal static async Task EverySinkHoldsEachRowOnceAsync(CdcScenario scenario, Dictionary<string, string> env, List<Worker> workers)
    {
        var sink = scenario.Pg.ConnectionString("sluice-test");
        await UntilAsync(async () =>
        {
            var n = await ClusterProbes.CountAsync(sink, "SELECT count(*) FROM bf.engagement_events", undefinedIsZero: true);
            return (n >= Rows, n);
        }, $"the {Rows} rows in the postgres sink", workers);
        (await ClusterProbes.CountAsync(sink, $"SELECT count(*) FROM (SELECT {Columns} FROM public.engagement_events EXCEPT ALL SELECT {Columns} FROM bf.engagement_events) d"))
            .ShouldBe(0, "every source row is in the postgres sink");
        (await ClusterProbes.CountAsync(sink, $"SELECT count(*) FROM (SELECT {Columns} FROM bf.engagement_events EXCEPT ALL SELECT {Columns} FROM public.engagement_events) d"))
            .ShouldBe(0, "the postgres sink holds nothing else");

        var lake = await UntilAsync(() =>
        {
            var rows = LakeRows(scenario, env);
            return Task.FromResult((rows.Count >= Rows, rows));
        }, $"the {Rows} rows in the lake", workers);
        var source = await SourceRowsAsync(sink);
        // Both ways: the same rows as many times each (EXCEPT ALL both ways), every row once.
        lake.Order(StringComparer.Ordinal).ShouldBe(source.Order(StringComparer.Ordinal), "the lake holds every source row once and nothing else");
        lake.Distinct().Count().ShouldBe(Rows);
    }

    /// <summary>
    /// engagement-cdc with no snapshot, the engagement_events table only, no enrichment; the shared lake and a postgres
    /// table keyed by event_id as its sinks; and its backfill job in pages of 200 rows.
    /// </summary>
    internal static string Recipe(string yaml)
    {
        var database = DatabaseName().Match(yaml).Groups[1].Value;
        var jobs = yaml[yaml.IndexOf("\njobs:", StringComparison.Ordinal)..].Replace("    batch_rows: 10000", "    batch_rows: 200", StringComparison.Ordinal);
        var y = yaml[..yaml.IndexOf("\njobs:", StringComparison.Ordinal)]
            .Replace("snapshot: true", "snapshot: false", StringComparison.Ordinal)
            .Replace("        content: { on_update: emit, on_delete: emit }     # keeps the enrichment's content cache current\n", "", StringComparison.Ordinal);
        var sink = $"Host={ServerSettings.PgHost};Port={ServerSettings.PgPort};Username={ServerSettings.PgUser};Password={ServerSettings.PgPassword};Database={database}";
        return y[..y.IndexOf("    steps:", StringComparison.Ordinal)] +
            "    sinks:\n" +
            "      - type: lake\n        zone: cdc\n        partition_by: event_ts\n" +
            $"      - type: postgres\n        connection: \"{sink}\"\n        schema: bf\n        keys: {{ engagement_events: [event_id] }}\n" +
            jobs;
    }

    /// <summary>The probe's value once it finds it, polling every 200 ms; past <see cref="Patience"/> the test fails with <paramref name="what"/>, the last value and the workers' last lines.</summary>
    internal static async Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, List<Worker> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var (found, value) = await probe();
            if (found) { return value; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what}: not within {Patience.TotalSeconds:0} s (last: {(value is System.Collections.ICollection c ? $"{c.Count} items" : value)})\n{ClusterCdcTests.Stderr(workers)}");
            await Task.Delay(200);
        }
    }

    [GeneratedRegex("database: \"(sluice_t4_[0-9a-f]+)\"")]
    private static partial Regex DatabaseName();

    internal sealed record Run(string Trigger, string Status, string Message);

    /// <summary>The backfill job's runs in the shared store, oldest first.</summary>
    internal static Task<List<Run>> RunsAsync(string cluster) => ClusterProbes.RowsAsync(ServerSettings.PostgresConnectionString,
        $"SELECT trigger, status, coalesce(message, '') FROM sluice_meta_{cluster}.job_runs WHERE job = 'engagement-cdc/backfill' ORDER BY id",
        r => new Run(r.GetString(0), r.GetString(1), r.GetString(2)), $"sluice_meta_{cluster}.job_runs");

    /// <summary>The lake's rows (their integer columns and event type), read by DuckDB (<c>sluice query --cluster</c>) from a folder no worker uses; none while there is no table yet.</summary>
    private static List<string> LakeRows(CdcScenario scenario, Dictionary<string, string> env)
    {
        using var p = SluiceProcess.StartIn(scenario.DataRoot, Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "elsewhere")).FullName, env,
            "query", "SELECT event_id, content_id, user_id, duration_ms, event_type FROM cdc.engagement_events", "--format", "csv", "--cluster");
        var code = p.WaitAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        if (code != 0 && p.Stderr.Contains("engagement_events", StringComparison.Ordinal)) { return []; }
        code.ShouldBe(0, p.Stderr);
        return p.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.TrimEnd('\r')).ToList();
    }

    /// <summary>The source table's rows as <see cref="LakeRows"/> writes them (a NULL as nothing).</summary>
    private static async Task<List<string>> SourceRowsAsync(string connection) => await ClusterProbes.RowsAsync(connection,
        "SELECT event_id, content_id, user_id, duration_ms, event_type FROM public.engagement_events",
        r => string.Join(",", Enumerable.Range(0, 5).Select(i => r.IsDBNull(i) ? "" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture))));

    /// <summary>The cdc pipeline's stream on the services' NATS.</summary>
    private static async Task DeleteStreamAsync(string cluster)
    {
        await using var nats = new NatsConnection(new NatsOpts { Url = ClusterEnvironment.ServicesNats });
        try { await nats.CreateJetStreamContext().DeleteStreamAsync($"SLUICE_{cluster}_engagement-cdc_cdc_cdc"); }
        catch (NatsJSApiException) { /* never made */ }
    }
}
