using System.Globalization;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Jobs;
using Sluice.Models;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A models job on the embedded (duckdb) warehouse over a lake table, on three <c>sluice run --cluster</c> workers
/// sharing one metadata store, drop folder and lake folder (issue 18): vehicle-files with a job whose model reads
/// <c>raw_data.vehicle_events</c> every minute. The first worker, alone, is SIGKILLed in its first scheduled run that
/// has something to commit, just before the commit (crash point <c>models.committing.schedule</c>); the three workers
/// then show it <c>interrupted</c>, re-run the slot once on another worker, fire each later slot once, and the model's
/// table in the shared lake equals a single-process run's over the same files.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterModelsLakeTests
{
    private const string Job = "vehicle-files/vehicle-days";
    private const string Table = "SELECT day, vehicle_id, events, moving, last_event_time FROM mart.vehicle_days ORDER BY day, vehicle_id";
    private const int Vehicles = 20;

    [Fact]
    public async Task A_duckdb_models_job_runs_once_per_slot_a_killed_runs_slot_is_rerun_once_and_the_lake_matches_a_single_process()
    {
        using var temp = new TempFolder("sluice-cluster-models");
        var recipe = Recipe(temp);
        await using var cluster = new SharedDropCluster(temp, workers: 3);
        var incoming = Path.Combine(cluster.Shared, "vehicle-files", "incoming");
        var env = new Dictionary<string, string>(cluster.Env) { [JobLeases.TtlVariable] = "3" }; // a killed runner's slot is taken over within seconds
        // Event days up to today, so a run as of today (every day from the first source day) has three days to model.
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var files = Enumerable.Range(0, 9).Select(n => ($"vehicles_events_{n:D2}.json", Events(today, n))).ToList();
        var workers = cluster.Workers;
        var running = new List<SluiceProcess>();
        try
        {
            foreach (var (name, content) in files) { VehicleFiles.Write(incoming, name, content); }
            long killedPid;
            var crashAt = $"{DayProcessor.CommittingCrashPoint}.schedule";
            using (var doomed = SluiceProcess.Start(workers[0], new Dictionary<string, string>(env) { [Core.CrashPoint.Variable] = crashAt }, "run", recipe, "--cluster"))
            {
                killedPid = doomed.Pid;
                // Alone, it lands the files and runs the minute's slots; the first that has days to commit kills it.
                await SharedDropCluster.WaitUntilAsync(() => doomed.HasExited, () => "worker 0 did not reach its crash point: " + Tail(doomed.Stderr), 180);
                doomed.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {crashAt}");
            }

            var killed = await cluster.RunsAsync(Job, $"trigger = 'schedule' AND status = 'running' AND pid = {killedPid}");
            killed.Count.ShouldBe(1, "the killed worker was in one slot's run; nobody has taken it over yet");
            var slot = killed[0].AsOf;

            foreach (var data in workers) { running.Add(SluiceProcess.Start(data, env, "run", recipe, "--cluster")); }
            string Logs() => string.Join("\n---\n", running.Select(p => Tail(p.Stderr)));
            await SharedDropCluster.WaitUntilAsync(() => cluster.RunsAsync(Job, "trigger = 'rerun' AND status <> 'running'").Result.Count > 0, () => "no re-run ended: " + Logs());
            await SharedDropCluster.WaitUntilAsync(() => cluster.LedgerAsync().Result.Count == files.Count && !Directory.EnumerateFiles(Path.Combine(cluster.Shared, "vehicle-files", "processing")).Any(),
                () => $"{cluster.LedgerAsync().Result.Count} of {files.Count} files in the ledger: " + Logs());
            // A slot that starts once every file is in models every file's days.
            var landed = DateTimeOffset.UtcNow;
            await SharedDropCluster.WaitUntilAsync(
                () => cluster.RunsAsync(Job, "trigger = 'schedule' AND status <> 'running'").Result.Any(r => r.AsOf > landed),
                () => "no slot ran after the last file landed: " + Logs(), 150);
            running.ShouldAllBe(p => !p.HasExited, Logs());

            var runs = await cluster.RunsAsync(Job, "TRUE");
            var ofSlot = runs.Where(r => r.AsOf == slot).ToList();
            ofSlot.Select(r => (r.Trigger, r.Status)).ShouldBe(new[] { ("schedule", JobRunStore.Interrupted), ("rerun", JobRunStore.Succeeded) }, "the slot fired once, its run was taken over and re-run once");
            ofSlot[1].Pid.ShouldNotBe(killedPid);
            runs.Count(r => r.Trigger == "rerun").ShouldBe(1, "only the killed run was re-run");
            runs.Where(r => r.Trigger == "schedule").GroupBy(r => r.AsOf).ShouldAllBe(g => g.Count() == 1, "each slot fired once across the workers");
            // A slot before the killed one may have failed: its source table was not in the lake yet.
            runs.Where(r => r.AsOf > slot).ShouldAllBe(r => r.Status == JobRunStore.Succeeded || r.Status == JobRunStore.Running, string.Join("\n", runs));

            // A clean single-process run of the same files, modelled as of today: the oracle.
            var single = Directory.CreateDirectory(temp.Sub("single")).FullName;
            foreach (var (name, content) in files) { VehicleFiles.Write(Path.Combine(single, "vehicle-files", "incoming"), name, content); }
            var once = await SluiceProcess.RunAsync(single, "run", recipe, "--once");
            once.Code.ShouldBe(0, once.Err);
            var modelled = await SluiceProcess.RunAsync(single, "models", "run", recipe);
            modelled.Code.ShouldBe(0, modelled.Err);
            var expected = await SluiceProcess.RunAsync(single, "query", Table, "--format", "csv");
            expected.Code.ShouldBe(0, expected.Err);
            expected.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(1 + (3 * Vehicles), "a row per vehicle and event day");
            using var query = SluiceProcess.Start(workers[1], env, "query", Table, "--format", "csv", "--cluster");
            (await query.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, query.Stderr);
            query.Stdout.ShouldBe(expected.Out, "the shared lake's model table is the single process's");
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
        }
    }

    /// <summary>vehicle-files with a models job on duckdb every minute instead of the summary after each load: per event day and vehicle, its events.</summary>
    private static string Recipe(TempFolder temp)
    {
        var recipe = RecipeVariant.Create(temp, "vehicle-files",
            ("    after_load: [daily-summary]      # keep the summary current as files land\n", ""),
            ("jobs:\n", """
                jobs:
                  vehicle-days:
                    type: models
                    schedule: "* * * * *"
                    folder: models
                    engine: duckdb
                    sources: [raw_data.vehicle_events]

                """));
        Directory.CreateDirectory(Path.Combine(recipe, "models", "mart"));
        File.WriteAllText(Path.Combine(recipe, "models", "mart", "vehicle_days.sql"), """
            /*
            kind: incremental
            partition_by: day
            reads: day
            */
            SELECT {{ as_of }} AS day, vehicle_id, count(*) AS events,
                   sum(CASE WHEN event_type = 'moving' THEN 1 ELSE 0 END) AS moving, max(event_time) AS last_event_time
            FROM raw_data.vehicle_events
            WHERE "date" = {{ as_of }}
            GROUP BY vehicle_id
            """);
        return recipe;
    }

    /// <summary>File n: 150 events of 20 vehicles on the day n % 3 days before <paramref name="today"/>, at times no other file has.</summary>
    private static string Events(DateOnly today, int file) =>
        VehicleFiles.Events(Enumerable.Range(0, 150)
            .Select(i => ($"v{i % Vehicles:D2}", today.AddDays(-(file % 3)).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddSeconds((file * 150) + i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), i % 3 == 0 ? "moving" : "parked"))
            .ToArray());

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(20));
}
