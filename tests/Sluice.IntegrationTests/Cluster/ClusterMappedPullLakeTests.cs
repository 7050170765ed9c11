using System.Globalization;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core.Metadata;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// repeat-reminder's mapped pull of a PostgreSQL table of Mongo-shaped rows (<c>postgres_pull</c> with
/// <c>mapping:</c>) into its store's lake zone, on <c>sluice run --cluster</c> workers sharing the lake
/// (<c>SLUICE_CLUSTER_FOLDER</c>) and the metadata store: the lake appends, so a page landed twice would be two rows.
/// A first worker alone is killed in its third page's commit (crash point <c>lake.renamed</c>: the page's files
/// published, its manifest transaction, with the watermark, not committed); two workers started next go on from the
/// watermark while rows are inserted into the table; the one pulling is SIGKILLed mid-stream and the other takes the
/// pull over. The lake then holds every row of the table once, as a query of the table lists them.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterMappedPullLakeTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180); // a worker took 100 s to start at load 110
    private const string Table = "reminders.attorney_events";

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-mapped-pull");
    private readonly string _database = "mp_" + Guid.NewGuid().ToString("N")[..12];

    public void Dispose()
    {
        ClusterProbes.DropDatabase(_database);

        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task A_mapped_pull_into_the_lake_zone_lands_every_row_once_across_a_kill_mid_commit_and_its_next_pullers_SIGKILL()
    {
        await ClusterProbes.ExecuteAsync(ServerSettings.PostgresConnectionString, $"CREATE DATABASE {_database}");
        var source = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = _database }.ConnectionString;
        await ClusterProbes.ExecuteAsync(source, """
            CREATE TABLE mongo_events (_id text PRIMARY KEY, type text, event_timestamp timestamptz, case_id text, client_id text,
                attorney_email text, status text, confidence_score double precision, case_type text, case_last_action text,
                updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
            """);
        await InsertAsync(source, "m", 0, 400);

        var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(_database));
        env[SharedMetadata.FolderVariable] = Directory.CreateDirectory(_temp.Sub("shared")).FullName;
        env[PartitionLeases.DurationVariable] = "3";
        env["SLUICE_REMINDER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var recipe = WriteRecipe();

        // Killed with its third page's files in the shared folder and its manifest transaction (rows and watermark) not committed.
        var doomedEnv = new Dictionary<string, string>(env) { [Sluice.Core.CrashPoint.Variable] = "lake.renamed:3" };
        using (var doomed = SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub("doomed")).FullName, doomedEnv, "run", recipe, "--cluster", "--port", "0"))
        {
            await UntilAsync(() => Task.FromResult((doomed.HasExited, true)), "the first worker at its crash point", []);
            doomed.Stderr.ShouldContain("killed at lake.renamed");
        }

        var atCrash = await LandedAsync();
        atCrash.ShouldBeGreaterThan(0, "the first pages committed before the crash");
        atCrash.ShouldBeLessThan(400, "the crash came mid-pull");

        var workers = ClusterWorker.StartAll(_temp, 2, recipe, env);
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            foreach (var w in workers) { await w.WaitHealthyAsync(); }
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await InsertAsync(source, "w", i * 10, 10);
                    await Task.Delay(100);
                }
            });

            await UntilAsync(async () => (await LandedAsync() >= 500, true), "the pull mid-stream", workers);
            var puller = await PullerAsync(workers, workers);
            puller.Kill();
            var next = await PullerAsync(workers.Where(w => w != puller).ToList(), workers);
            var atKill = await LandedAsync();
            await UntilAsync(async () => (await LandedAsync() >= atKill + 100, true), "rows inserted after the kill, pulled by the worker that took over", workers);
            await stopWriting.CancelAsync();
            await writer;

            // Caught up: every row of the table in the lake (a row landed twice would make the count pass the table's too).
            var rows = await ClusterProbes.CountAsync(source, "SELECT count(*) FROM mongo_events");
            await UntilAsync(async () => (await LandedAsync() >= rows, true), "every row of the table in the lake", workers);

            var ids = await ClusterProbes.ScalarTextAsync(source, """SELECT count(*) || '/' || md5(string_agg(_id, ',' ORDER BY _id COLLATE "C")) FROM mongo_events""");
            Query(env, $"SELECT count(*) || '/' || md5(string_agg(source_id, ',' ORDER BY source_id)) AS c FROM {Table}")
                .ShouldBe(ids, "the lake holds each row of the table once (the ids as the table lists them)");
            Query(env, $"SELECT count(*) || '/' || count(DISTINCT source_id) AS c FROM {Table}").ShouldBe($"{rows}/{rows}");
            Query(env, "SELECT count(*) AS c FROM reminders.source_event").ShouldBe(rows.ToString(CultureInfo.InvariantCulture), "each row as received once");
            next.Process!.HasExited.ShouldBeFalse(next.Stderr);
        }
        finally
        {
            await stopWriting.CancelAsync();
            if (writer is not null) { await writer.ContinueWith(_ => { }, TaskScheduler.Default); }
            foreach (var w in workers) { w.Dispose(); }
        }
    }

    /// <summary>repeat-reminder with only the pull of <c>mongo_events</c> (pages of 50, polled every second), its store the lake zone as shipped.</summary>
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
            """);
        return recipe;
    }

    /// <summary>Mongo-shaped rows <c>&lt;prefix&gt;&lt;n&gt;</c> for n from <paramref name="from"/>, all valid for the mapping.</summary>
    private static Task InsertAsync(string source, string prefix, int from, int count) => ClusterProbes.ExecuteAsync(source, $"""
        INSERT INTO mongo_events (_id, type, event_timestamp, case_id, client_id, attorney_email, status, confidence_score, case_type, case_last_action)
        SELECT '{prefix}' || lpad(g::text, 6, '0'), 'note', timestamptz '2026-07-01 00:00:00+00' + g * interval '1 second', 'CASE-' || g, 'CLIENT-' || (g % 7),
               'att' || (g % 5) || '@example.test', 'closed', 0.5, 'Immigration', 'closed the file'
        FROM generate_series({from}, {from + count - 1}) g
        """);

    /// <summary>The attorney events the shared lake's manifest holds (0 before the first commit).</summary>
    private Task<long> LandedAsync() => ClusterProbes.CountAsync(ServerSettings.PostgresConnectionString,
        $"SELECT coalesce(sum(rows), 0) FROM sluice_meta_{_fixture.Cluster}.lake_files WHERE table_name = '{Table}' AND removed_at IS NULL", undefinedIsZero: true);

    /// <summary>The one worker of <paramref name="among"/> the registry shows holding the pull, once there is one.</summary>
    private Task<ClusterWorker> PullerAsync(IReadOnlyList<ClusterWorker> among, IReadOnlyList<ClusterWorker> all) => UntilAsync(() =>
    {
        var views = WorkerRegistry.List(_fixture.Store, TimeProvider.System);
        var pullers = among.Where(w => views.Any(v => v.Pid == w.Process!.Pid && v.Health is "green" or "red" && Held(v).Contains("repeat-reminder/mongo-table"))).ToList();
        return Task.FromResult((pullers.Count == 1, pullers.FirstOrDefault()!));
    }, "one worker holding the pull", all);

    private static IReadOnlyList<string> Held(WorkerView view) => view.Holds.TryGetValue("pulls", out var items) ? items : [];

    /// <summary>One value from the shared lake through <c>sluice query --cluster</c>, from a folder no worker uses.</summary>
    private string Query(IDictionary<string, string> env, string sql)
    {
        var csv = ClusterLakeQuery.Query(_temp, env, sql).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        csv.Length.ShouldBe(2, string.Join('\n', csv));
        return csv[1].Trim();
    }

    private static Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, IReadOnlyList<ClusterWorker> workers) =>
        ClusterProbes.UntilAsync(probe, what, workers, Patience);
}
