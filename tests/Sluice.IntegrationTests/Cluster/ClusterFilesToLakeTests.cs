using Sluice.Connectors.Lake;
using Sluice.IntegrationTests.Pipeline;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A files pipeline with a lake sink and a keyed Postgres sink on three <c>sluice run --cluster</c> workers over one
/// shared drop folder, lake folder and metadata store (issue 18). The first worker, alone, is SIGKILLed just after its
/// first lake commit (crash point <c>lake.sink-committed</c>): a file's rows are in the shared lake, the file in
/// processing/, not in the ledger. The three workers then run together and a second drop arrives: the worker that takes
/// the dead worker's file over hands it on again, the lake sink skips its rows (they are recorded under the file's log
/// with the commit) and the Postgres sink gets them; the lake and the table hold every valid row once, as after a clean
/// single-process run of the same files.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterFilesToLakeTests
{
    private const string Lake = "SELECT count(*) AS n, count(DISTINCT id) AS d, sum(amount) AS s, sum(hash(id, \"at\", site, amount, date)) AS h FROM drops.readings";
    private const string Checksum = "count(*) || ',' || count(DISTINCT id) || ',' || sum(amount)";

    [Fact]
    public async Task Three_workers_land_each_row_of_a_shared_drop_folder_in_the_lake_once_across_a_kill_after_a_lake_commit()
    {
        using var temp = new TempFolder("sluice-cluster-files-lake");
        var id = Guid.NewGuid().ToString("N")[..10];
        var (recipe, schema) = FilesToSinksTests.WriteRecipe(temp.Sub("recipe"), $"cfl_{id}");
        var (singleRecipe, singleSchema) = FilesToSinksTests.WriteRecipe(temp.Sub("single-recipe"), $"cfl_single_{id}");
        await using var cluster = new SharedDropCluster(temp, workers: 3);
        var processing = Path.Combine(cluster.Shared, "drops", "processing");
        var running = new List<SluiceProcess>();
        try
        {
            FilesToSinksTests.WriteDrops(cluster.Shared);
            using (var doomed = SluiceProcess.Start(cluster.Workers[0], cluster.EnvWith(Core.CrashPoint.Variable, LakeSink.CommittedCrashPoint), "run", recipe, "--cluster"))
            {
                await SharedDropCluster.WaitUntilAsync(() => doomed.HasExited, () => "the first worker did not reach its crash point: " + doomed.Stderr);
                doomed.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {LakeSink.CommittedCrashPoint}");
            }

            Directory.GetFiles(processing).ShouldNotBeEmpty("the killed worker held claimed files in processing/");
            (await cluster.LedgerAsync()).ShouldBeEmpty("a file is in the ledger only once every sink has it, and the worker was killed before");

            foreach (var data in cluster.Workers) { running.Add(SluiceProcess.Start(data, cluster.Env, "run", recipe, "--cluster")); }
            FilesToSinksTests.WriteDrops(cluster.Shared, first: FilesToSinksTests.Files);
            const int Contents = 2 * FilesToSinksTests.Files;
            var processed = Path.Combine(cluster.Shared, "drops", "processed");
            string Logs() => string.Join("\n---\n", running.Select(p => string.Join('\n', p.Stderr.Split('\n').TakeLast(20))));
            await SharedDropCluster.WaitUntilAsync(
                () => running.All(p => !p.HasExited) && cluster.LedgerAsync().Result.Count == Contents
                    && Directory.GetFiles(processed).Length == Contents + 2 && Directory.GetFiles(processing).Length == 0,
                () => $"{cluster.LedgerAsync().Result.Count} of {Contents} contents in the ledger, {Directory.GetFiles(processed).Length} files in processed/; workers:\n{Logs()}");

            Directory.GetFiles(Path.Combine(cluster.Shared, "drops", "failed")).ShouldBeEmpty();
            var logs = string.Join("\n", running.Select(p => p.Stderr));
            logs.ShouldContain("its claim by", customMessage: "a live worker took over the dead worker's file");
            logs.ShouldContain("were committed already (by a worker that died before acknowledging them)", customMessage: "the lake sink skipped the rows the dead worker had committed");

            // A clean single-process run of the same files: the oracle.
            var single = Directory.CreateDirectory(temp.Sub("single")).FullName;
            FilesToSinksTests.WriteDrops(single);
            FilesToSinksTests.WriteDrops(single, first: FilesToSinksTests.Files);
            var once = await SluiceProcess.RunAsync(single, "run", singleRecipe, "--once");
            once.Code.ShouldBe(0, once.Err);
            var expected = await Files.CrashRecoveryTests.Query(single, Lake);
            expected.ShouldContain($"\n{Contents * (FilesToSinksTests.RowsPerFile - 1)},{Contents * (FilesToSinksTests.RowsPerFile - 1)},", Case.Sensitive, "each valid row once");
            using var query = SluiceProcess.Start(cluster.Workers[1], cluster.Env, "query", Lake, "--format", "csv", "--cluster");
            (await query.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, query.Stderr);
            query.Stdout.ShouldBe(expected, "the shared lake holds every valid row once, as a single process's");
            (await FilesToSinksTests.Pg($"SELECT {Checksum} FROM {schema}.readings")).ShouldBe(await FilesToSinksTests.Pg($"SELECT {Checksum} FROM {singleSchema}.readings"), "Postgres got the rows of the file the lake had already");
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
            await FilesToSinksTests.Pg($"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS {singleSchema} CASCADE");
        }
    }

    [Fact]
    public async Task The_csv_to_postgres_and_lake_example_runs_on_two_workers()
    {
        using var temp = new TempFolder("sluice-cluster-example");
        var schema = "cex_" + Guid.NewGuid().ToString("N")[..10];
        var recipe = RecipeVariant.Create(temp, Path.Combine("examples", "csv-to-postgres-and-lake"), ("        schema: shop\n", $"        schema: {schema}\n"));
        await using var cluster = new SharedDropCluster(temp, workers: 2);
        var input = Path.Combine(TestPaths.Recipe(Path.Combine("examples", "csv-to-postgres-and-lake")), "tests", "two-drops", "input");
        var incoming = Path.Combine(cluster.Shared, "orders-drop", "incoming");
        Directory.CreateDirectory(incoming);
        var running = new List<SluiceProcess>();
        try
        {
            foreach (var data in cluster.Workers) { running.Add(SluiceProcess.Start(data, cluster.Env, "run", recipe, "--cluster")); }
            string Logs() => string.Join("\n---\n", running.Select(p => string.Join('\n', p.Stderr.Split('\n').TakeLast(20))));
            // The second drop corrects an order of the first: it is dropped once the first is in, as a person would.
            var drops = 0;
            foreach (var day in new[] { "day1", "day2" })
            {
                foreach (var f in Directory.GetFiles(Path.Combine(input, day))) { File.Copy(f, Path.Combine(incoming, Path.GetFileName(f))); }
                drops++;
                await SharedDropCluster.WaitUntilAsync(() => running.All(p => !p.HasExited) && cluster.LedgerAsync().Result.Count == drops
                    && !Directory.EnumerateFiles(Path.Combine(cluster.Shared, "orders-drop", "processing")).Any(), () => $"drop {day} not in: " + Logs());
            }

            using var query = SluiceProcess.Start(cluster.Workers[1], cluster.Env, "query", "SELECT order_id || ':' || amount AS o FROM shop.orders ORDER BY 1", "--format", "csv", "--cluster");
            (await query.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, query.Stderr);
            query.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe(new[] { "o", "o-1:12.5", "o-1:13.5", "o-3:7.0", "o-4:40.0" }, "the lake keeps every good row (o-2's amount is a dead letter)");
            (await FilesToSinksTests.Pg($"SELECT string_agg(order_id || ':' || amount, ',' ORDER BY order_id) FROM {schema}.orders")).ShouldBe("o-1:13.5,o-3:7,o-4:40", "PostgreSQL keeps one row per order, the correction upserted");
        }
        finally
        {
            foreach (var p in running) { p.Dispose(); }
            await FilesToSinksTests.Pg($"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
    }
}
