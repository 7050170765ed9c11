using System.Globalization;
using Microsoft.Data.Sqlite;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// vehicle-files on three <c>sluice run --cluster</c> workers sharing one metadata store (a Postgres schema), one drop
/// folder and one lake folder. The first worker is alone when the first drop arrives, claims it and is killed (SIGKILL,
/// at a crash point) in the middle of a file: its files were renamed into the lake and not committed. The three workers
/// then run together (the dead one restarted) and a second drop arrives: the dead worker's claims are taken over once
/// their lease ran out, and every file lands exactly once, as in a clean single-process run of the same files.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterFilesTests
{
    private const int SmallEvents = 200;
    private const int LargeEvents = 6000;

    private const string Recipe = """
        name: vehicle-files
        description: vehicle-files without its daily summary (jobs do not run in cluster mode yet)
        pipelines:
          ingest:
            source:
              type: files
              folder: vehicle-files
              file_types: filetypes
              poll_interval: 200ms
              stable_after: 200ms
              max_parallel_files: 2
              group_max_mb: 1              # files over 256 KiB stream through alone
        """;

    [Fact]
    public async Task Three_workers_over_one_shared_drop_folder_ingest_every_file_once_and_take_over_a_killed_workers_file()
    {
        using var temp = new TempFolder("sluice-cluster-files");
        var recipe = RecipeVariant.Create(temp, "vehicle-files");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), Recipe);
        await using var cluster = new SharedDropCluster(temp, workers: 3);
        var shared = cluster.Shared;
        var incoming = Path.Combine(shared, "vehicle-files", "incoming");
        var env = cluster.Env;
        var files = new List<(string Name, string Content)>();
        for (var drop = 0; drop < 2; drop++)
        {
            for (var f = 0; f < 14; f++)
            {
                var n = drop * 14 + f;
                files.Add(($"vehicles_events_{n:D2}.json", Events(n, f < 2 ? LargeEvents : SmallEvents)));
            }
        }

        var workers = cluster.Workers;
        var running = new List<SluiceProcess>();
        try
        {
            foreach (var (name, content) in files.Take(14)) { VehicleFiles.Write(incoming, name, content); }
            using (var doomed = SluiceProcess.Start(workers[1], cluster.EnvWith("SLUICE_CRASH_AT", "lake.renamed"), "run", recipe, "--cluster"))
            {
                await SharedDropCluster.WaitUntilAsync(() => doomed.HasExited, () => "the first worker did not reach its crash point: " + doomed.Stderr);
                doomed.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at lake.renamed");
            }

            var held = Directory.GetFiles(Path.Combine(shared, "vehicle-files", "processing"));
            held.ShouldNotBeEmpty("the killed worker held claimed files in processing/");
            (await cluster.LedgerAsync()).Count.ShouldBe(0, "it committed none of them");

            foreach (var data in workers) { running.Add(SluiceProcess.Start(data, env, "run", recipe, "--cluster")); }
            foreach (var (name, content) in files.Skip(14)) { VehicleFiles.Write(incoming, name, content); }
            string Logs() => string.Join("\n---\n", running.Select(p => string.Join('\n', p.Stderr.Split('\n').TakeLast(20))));
            await SharedDropCluster.WaitUntilAsync(() => running.All(p => !p.HasExited) && cluster.LedgerAsync().Result.Count == files.Count && !Directory.EnumerateFiles(Path.Combine(shared, "vehicle-files", "processing")).Any(),
                () => $"{cluster.LedgerAsync().Result.Count} of {files.Count} files in the ledger; workers:\n{Logs()}");

            var ledger = await cluster.LedgerAsync();
            ledger.Select(e => e.File).ShouldBe(files.Select(f => f.Name).Order(StringComparer.Ordinal), "every file is in the ledger once");
            Directory.GetFiles(Path.Combine(shared, "vehicle-files", "processed")).Select(Path.GetFileName).Order(StringComparer.Ordinal)
                .ShouldBe(files.Select(f => f.Name).Order(StringComparer.Ordinal), "and in processed/ once");
            string.Join("\n", running.Select(p => p.Stderr)).ShouldContain("its claim by", customMessage: "a live worker took over the dead worker's claims");

            // A clean single-process run of the same files: the oracle.
            var single = Directory.CreateDirectory(temp.Sub("single")).FullName;
            foreach (var (name, content) in files) { VehicleFiles.Write(Path.Combine(single, "vehicle-files", "incoming"), name, content); }
            var once = await SluiceProcess.RunAsync(single, "run", recipe, "--once");
            once.Code.ShouldBe(0, once.Err);

            ledger.ShouldBe(SingleLedger(single), "the ledger is the single process's: each file with its rows");
            const string Figures = "SELECT count(*) AS n, count(DISTINCT (vehicle_id, event_time)) AS keys, min(event_time) AS first, max(event_time) AS last FROM raw_data.vehicle_events";
            var expected = await SluiceProcess.RunAsync(single, "query", Figures, "--format", "csv");
            expected.Code.ShouldBe(0, expected.Err);
            expected.Out.ShouldContain($"{(4 * LargeEvents) + (24 * SmallEvents)},{(4 * LargeEvents) + (24 * SmallEvents)},");
            foreach (var data in new[] { workers[0], workers[2] })
            {
                using var query = SluiceProcess.Start(data, env, "query", Figures, "--format", "csv", "--cluster");
                (await query.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, query.Stderr);
                query.Stdout.ShouldBe(expected.Out, "query on any worker reads the shared lake: the same rows as the single process, none twice");
            }
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
        }
    }

    [Fact]
    public async Task Files_in_cluster_mode_without_the_shared_folder_are_refused_naming_the_variable()
    {
        using var temp = new TempFolder("sluice-cluster-files");
        var recipe = RecipeVariant.Create(temp, "vehicle-files");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), Recipe);
        // run --cluster itself needs the shared store (ClusterStateCliTests); with it, a files source needs the shared folder too.
        using var p = SluiceProcess.Start(temp.Path, new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString,
            ["SLUICE_CLUSTER_NAME"] = "c" + Guid.NewGuid().ToString("N")[..10], ["SLUICE_CLUSTER_FOLDER"] = "",
        }, "run", recipe, "--cluster");
        (await p.WaitAsync(TimeSpan.FromMinutes(2))).ShouldNotBe(0, p.Stderr);
        p.Stderr.ShouldContain("set SLUICE_CLUSTER_FOLDER");
        p.Stderr.ShouldNotContain("   at ");
    }

    /// <summary>A vehicle events file whose events no other file has (its number in the vehicle and the minute).</summary>
    private static string Events(int file, int count) =>
        VehicleFiles.Events(Enumerable.Range(0, count)
            .Select(i => ($"f{file:D2}-v{i % 50:D2}", new DateTime(2025, 11, 8, 0, 0, 0, DateTimeKind.Utc).AddMinutes(file).AddSeconds(i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), i % 3 == 0 ? "moving" : "parked"))
            .ToArray());

    private static List<(string File, long Rows)> SingleLedger(string data)
    {
        using var c = new SqliteConnection($"Data Source={Path.Combine(data, "meta.db")};Pooling=false");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT file_name, rows FROM ingested_files ORDER BY file_name";
        using var r = cmd.ExecuteReader();
        var list = new List<(string, long)>();
        while (r.Read()) { list.Add((r.GetString(0), r.GetInt64(1))); }
        return list;
    }
}
