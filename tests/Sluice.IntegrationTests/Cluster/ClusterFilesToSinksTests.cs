using System.Globalization;
using Sluice.IntegrationTests.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A files pipeline with a keyed Postgres sink on three <c>sluice run --cluster</c> workers over one shared drop folder
/// and one shared metadata store. The first worker is alone when the first drop arrives, claims its files and is killed
/// (SIGKILL) right after its sink's first write, before the checkpoint: rows of its files are in Postgres, the files in
/// processing/, their units and claims in the shared store. The three workers then run together (the dead one
/// restarted) and a second drop arrives: the dead worker's files are taken over once their lease ran out and handed to
/// the sinks again, and the table holds every valid row once, as after a clean single-process run of the same files.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterFilesToSinksTests
{
    private const string Checksum = "count(*) || ',' || count(DISTINCT id) || ',' || sum(amount)";

    [Fact]
    public async Task Three_workers_hand_each_file_of_a_shared_drop_folder_to_postgres_once_and_redo_a_killed_workers_files()
    {
        using var temp = new TempFolder("sluice-cluster-files-sinks");
        var id = Guid.NewGuid().ToString("N")[..10];
        var (recipe, schema) = FilesToSinksTests.WriteRecipe(temp.Sub("recipe"), $"cfs_{id}", PostgresSink($"cfs_{id}"));
        var (singleRecipe, singleSchema) = FilesToSinksTests.WriteRecipe(temp.Sub("single-recipe"), $"cfs_single_{id}", PostgresSink($"cfs_single_{id}"));
        await using var cluster = new SharedDropCluster(temp, workers: 3);
        var processing = Path.Combine(cluster.Shared, "drops", "processing");
        var running = new List<SluiceProcess>();
        try
        {
            FilesToSinksTests.WriteDrops(cluster.Shared);
            using (var doomed = SluiceProcess.Start(cluster.Workers[1], cluster.EnvWith("SLUICE_CRASH_AT", "sink.written"), "run", recipe, "--cluster"))
            {
                await SharedDropCluster.WaitUntilAsync(() => doomed.HasExited, () => "the first worker did not reach its crash point: " + doomed.Stderr);
                doomed.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at sink.written");
            }

            Directory.GetFiles(processing).ShouldNotBeEmpty("the killed worker held claimed files in processing/");
            (await cluster.LedgerAsync()).ShouldBeEmpty("it finished none of them");
            long.Parse(await FilesToSinksTests.Pg($"SELECT count(*) FROM {schema}.readings"), CultureInfo.InvariantCulture)
                .ShouldBeGreaterThan(0, "its sink wrote rows of them before the kill");

            foreach (var data in cluster.Workers) { running.Add(SluiceProcess.Start(data, cluster.Env, "run", recipe, "--cluster")); }
            FilesToSinksTests.WriteDrops(cluster.Shared, first: FilesToSinksTests.Files);
            const int Contents = 2 * FilesToSinksTests.Files;
            var processed = Path.Combine(cluster.Shared, "drops", "processed");
            string Logs() => string.Join("\n---\n", running.Select(p => string.Join('\n', p.Stderr.Split('\n').TakeLast(20))));
            await SharedDropCluster.WaitUntilAsync(
                () => running.All(p => !p.HasExited) && cluster.LedgerAsync().Result.Count == Contents
                    && Directory.GetFiles(processed).Length == Contents + 2 && Directory.GetFiles(processing).Length == 0,
                () => $"{cluster.LedgerAsync().Result.Count} of {Contents} contents in the ledger, {Directory.GetFiles(processed).Length} files in processed/; workers:\n{Logs()}");

            (await cluster.LedgerAsync()).Select(e => e.Rows).ShouldAllBe(rows => rows == FilesToSinksTests.RowsPerFile - 1, "each content once in the ledger, with its valid rows");
            Directory.GetFiles(Path.Combine(cluster.Shared, "drops", "failed")).ShouldBeEmpty();
            var logs = string.Join("\n", running.Select(p => p.Stderr));
            logs.ShouldContain("its claim by", customMessage: "a live worker took over the dead worker's files");
            // Which worker lands which file is not asserted: the first worker up may claim every file before the others
            // start (CI saw one land all 14 in 2 s). That each file lands once however they are shared is what counts.

            // A clean single-process run of the same files: the oracle.
            var single = Directory.CreateDirectory(temp.Sub("single")).FullName;
            FilesToSinksTests.WriteDrops(single);
            FilesToSinksTests.WriteDrops(single, first: FilesToSinksTests.Files);
            var once = await SluiceProcess.RunAsync(single, "run", singleRecipe, "--once");
            once.Code.ShouldBe(0, once.Err);
            var expected = await FilesToSinksTests.Pg($"SELECT {Checksum} FROM {singleSchema}.readings");
            expected.ShouldStartWith($"{Contents * (FilesToSinksTests.RowsPerFile - 1)},{Contents * (FilesToSinksTests.RowsPerFile - 1)},");
            (await FilesToSinksTests.Pg($"SELECT {Checksum} FROM {schema}.readings")).ShouldBe(expected, "every valid row once, as in a single process, though the killed worker's files went to the sink twice");
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
            await FilesToSinksTests.Pg($"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {singleSchema} CASCADE");
        }
    }

    private static string PostgresSink(string schema) => $"""
              - type: postgres
                schema: {schema}
                keys:
                  readings: [id]
        """;
}
