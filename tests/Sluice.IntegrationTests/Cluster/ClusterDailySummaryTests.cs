using System.Globalization;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Jobs;
using Sluice.Jobs.DailySummary;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// vehicle-files as shipped, daily summary included (only its schedule made every minute), on three
/// <c>sluice run --cluster</c> workers sharing one metadata store, drop folder and lake folder (issue 18). The first
/// worker, alone, lands a drop and is SIGKILLed in its first scheduled summary run, before that run's commit; the three
/// workers then take the run over (it shows <c>interrupted</c>, one other worker re-runs the slot once), land a second
/// drop of late and new days, and the summary in the shared lake equals a single-process run's over the same files.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterDailySummaryTests
{
    private const string Job = "vehicle-files/daily-summary";
    private const string Summary = "SELECT vehicle_id, day, last_event_time, last_event_type FROM reports.daily_summary ORDER BY day, vehicle_id";

    [Fact]
    public async Task The_summary_runs_once_per_slot_a_killed_runs_slot_is_rerun_once_and_the_lake_matches_a_single_process()
    {
        using var temp = new TempFolder("sluice-cluster-summary");
        var recipe = RecipeVariant.Create(temp, "vehicle-files", ("schedule: \"0 1 * * *\"", "schedule: \"* * * * *\""));
        await using var cluster = new SharedDropCluster(temp, workers: 3);
        var shared = cluster.Shared;
        var incoming = Path.Combine(shared, "vehicle-files", "incoming");
        var env = new Dictionary<string, string>(cluster.Env);
        env[JobLeases.TtlVariable] = "3"; // a killed runner's slot is taken over within seconds
        // Two drops over three event days; the second adds late events to the first's days.
        var files = Enumerable.Range(0, 14).Select(n => ($"vehicles_events_{n:D2}.json", Events(n))).ToList();
        var workers = cluster.Workers;
        var running = new List<SluiceProcess>();
        try
        {
            foreach (var (name, content) in files.Take(8)) { VehicleFiles.Write(incoming, name, content); }
            long killedPid;
            var crashAt = $"{DailySummaryJob.CommittingCrashPoint}.schedule";
            using (var doomed = SluiceProcess.Start(workers[0], new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = crashAt }, "run", recipe, "--cluster"))
            {
                killedPid = doomed.Pid;
                // Alone, it takes the first slot it finds free (a slot that comes while an after-load run holds the lease is skipped).
                await SharedDropCluster.WaitUntilAsync(() => doomed.HasExited, () => "worker 0 did not reach its crash point: " + Tail(doomed.Stderr), 180);
                doomed.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {crashAt}");
            }

            var killed = await cluster.RunsAsync(Job, $"trigger = 'schedule' AND pid = {killedPid}");
            killed.Count.ShouldBe(1, "the killed worker started one slot's run");
            killed[0].Status.ShouldBe(JobRunStore.Running, "nobody has taken it over yet");
            var slot = killed[0].AsOf;

            foreach (var data in workers) { running.Add(SluiceProcess.Start(data, env, "run", recipe, "--cluster")); }
            string Logs() => string.Join("\n---\n", running.Select(p => Tail(p.Stderr)));
            await SharedDropCluster.WaitUntilAsync(() => cluster.RunsAsync(Job, "trigger = 'rerun' AND status <> 'running'").Result.Count > 0, () => "no re-run ended: " + Logs());

            foreach (var (name, content) in files.Skip(8)) { VehicleFiles.Write(incoming, name, content); }
            await SharedDropCluster.WaitUntilAsync(() => cluster.LedgerAsync().Result.Count == files.Count && !Directory.EnumerateFiles(Path.Combine(shared, "vehicle-files", "processing")).Any(),
                () => $"{cluster.LedgerAsync().Result.Count} of {files.Count} files in the ledger: " + Logs());
            // A slot that starts once every file is in has every file's days to summarise, if the after-load runs left any.
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
            runs.Where(r => r.AsOf != slot).ShouldAllBe(r => r.Status == JobRunStore.Succeeded || r.Status == JobRunStore.Running, string.Join("\n", runs));
            runs.ShouldContain(r => r.Trigger == "after_load", "the workers' loads ran the summary too");

            // A clean single-process run of the same files: the oracle.
            var single = Directory.CreateDirectory(temp.Sub("single")).FullName;
            foreach (var (name, content) in files) { VehicleFiles.Write(Path.Combine(single, "vehicle-files", "incoming"), name, content); }
            var once = await SluiceProcess.RunAsync(single, "run", recipe, "--once");
            once.Code.ShouldBe(0, once.Err);
            var expected = await SluiceProcess.RunAsync(single, "query", Summary, "--format", "csv");
            expected.Code.ShouldBe(0, expected.Err);
            expected.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(1 + (3 * Vehicles), "a row per vehicle and event day");
            using var query = SluiceProcess.Start(workers[1], env, "query", Summary, "--format", "csv", "--cluster");
            (await query.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, query.Stderr);
            query.Stdout.ShouldBe(expected.Out, "the shared lake's summary is the single process's");
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
        }
    }

    private const int Vehicles = 20;

    /// <summary>File n: 150 events of 20 vehicles on event day 7, 8 or 9 November 2025 (by n), at times no other file has.</summary>
    private static string Events(int file) =>
        VehicleFiles.Events(Enumerable.Range(0, 150)
            .Select(i => ($"v{i % Vehicles:D2}", new DateTime(2025, 11, 7 + (file % 3), 0, 0, 0, DateTimeKind.Utc).AddSeconds((file * 150) + i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), i % 3 == 0 ? "moving" : "parked"))
            .ToArray());

    private static string Tail(string text) => string.Join('\n', text.Split('\n').TakeLast(20));
}
