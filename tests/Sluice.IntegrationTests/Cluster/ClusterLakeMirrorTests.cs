using System.Globalization;
using System.Text.Json;
using Npgsql;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The lake sink's <c>mode: mirror</c> in a <c>postgres_cdc</c> pipeline on several workers through JetStream (issue 18):
/// the mirror chaos workload (random inserts, updates leaving a TOASTed body alone, deletes, key changes,
/// truncates) on three tables, the mirror in the shared lake folding every second, while workers die: the first alone
/// right after a lake commit it never acknowledged (its batch comes again to another worker, which skips it), then the
/// slot's holder and a worker reading changes, by SIGKILL. Then the mirror, read as a user reads it
/// (<c>sluice query --cluster</c>), equals each source table exactly: every column, EXCEPT ALL both ways empty.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterLakeMirrorTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    /// <summary>The mirror's columns that a JSON answer cannot tell by itself (a number with a point, a text that is an instant).</summary>
    private static readonly Dictionary<string, Func<JsonElement, object?>> Typed = new(StringComparer.Ordinal)
    {
        ["price"] = v => v.GetDecimal(),
        ["score"] = v => v.GetDouble(),
        ["updated"] = v => Instant(v.GetString()!),
    };

    [Fact]
    public async Task A_lake_mirror_on_three_workers_equals_its_source_tables_after_the_slot_holder_and_a_reader_are_killed()
    {
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        await using var workload = new MirrorChaosWorkload(seed);
        await workload.CreateAsync();
        using var temp = new TempFolder("sluice-cluster-mirror");
        var lake = MirrorTargets.All.Single(t => t.Name == "lake");
        var (_, env) = await workload.WriteRecipeAsync(temp, "lake-mirror-cluster", [lake]);
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(temp.Sub("nats")).FullName);
        var cluster = "clmir" + workload.Id;
        env["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString;
        env["SLUICE_CLUSTER_NAME"] = cluster;
        env["SLUICE_CLUSTER_NATS"] = nats.Urls;
        env["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(temp.Sub("shared")).FullName;
        // A dead worker's partitions and unacknowledged changes go to the others within seconds.
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        env["SLUICE_CLUSTER_LEASE"] = "5";
        string Folder(int i) => Directory.CreateDirectory(temp.Sub($"worker{i}")).FullName;

        // Worker 0 holds the slot and every partition alone, and dies right after its sixth lake commit, before it
        // acknowledges that batch: its changes come again to the workers started then, which must skip them.
        var doomed = new Worker(Folder(0), new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = "lake.sink-committed:6" }, "lake-mirror-cluster");
        var workers = new List<Worker> { doomed };
        using var stop = new CancellationTokenSource();
        var changing = Task.CompletedTask;
        try
        {
            // The changes start once the initial snapshot is in the mirror (a snapshot resumed by another holder is
            // ClusterCdcJetStreamTests' subject), so the kill falls among streamed changes.
            var differences = new List<string>();
            await CdcScenario.WaitUntilAsync(async () => (differences = await DifferencesAsync(workload, temp, env)).Count == 0, Patience,
                () => Task.FromResult($"the initial snapshot is not in the mirror: {differences.Count} differences\n{doomed.Process.Stderr}"));
            changing = Task.Run(() => workload.RunAsync(stop.Token));
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(doomed.Process.HasExited), Patience, () => Task.FromResult("worker 0 did not reach its crash point: " + doomed.Process.Stderr));
            doomed.Process.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at lake.sink-committed");
            workers.AddRange(new[] { Folder(1), Folder(2), doomed.Data }.Select(f => new Worker(f, env, "lake-mirror-cluster")));
            foreach (var w in workers.Skip(1)) { await w.WaitStartedAsync(); }
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(Live(workers).Any(w => w.Process.Stderr.Contains("were committed already", StringComparison.Ordinal))), Patience,
                () => Task.FromResult($"no worker skipped the batch the killed worker committed and did not acknowledge\n{ClusterCdcTests.Stderr(workers)}"));

            // The slot's holder, SIGKILLed while the workload goes on; then, once another holds the slot, a worker that reads changes.
            var holder = await ClusterCdcTests.HolderAsync(workload.Pg, workers);
            holder.Kill();
            Worker? next = null;
            await CdcScenario.WaitUntilAsync(async () => (next = await ClusterCdcTests.HolderAsync(workload.Pg, workers)) != holder, Patience,
                () => Task.FromResult($"no worker took the slot after its holder's SIGKILL\n{ClusterCdcTests.Stderr(workers)}"));
            var reader = await ReaderAsync(cluster, workers, next!);
            reader.Kill();
            var killed = $"the slot's holder (pid {holder.Process.Pid}) and a reader (pid {reader.Process.Pid}{(reader == next ? ", the next holder" : "")})";
            output.WriteLine($"killed {killed}");
            // The holder's data folder started again: two workers go on.
            workers.Add(new Worker(holder.Data, env, "lake-mirror-cluster"));
            await workers[^1].WaitStartedAsync();
            await FinishAsync(workload, changing, stop, temp, env, cluster, workers, $"seed {seed}; killed {killed}", output);
        }
        finally
        {
            await stop.CancelAsync();
            await changing.ContinueWith(_ => { }, TaskScheduler.Default);
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
        }
    }

    /// <summary>
    /// The end of a lake mirror test on a cluster: the workload stopped once it has run 100 more transactions, then the
    /// mirror equals each source table (polled; <paramref name="what"/> heads the failure), the tables are not all empty,
    /// two workers live, no change was dead-lettered, and the mirror was folded.
    /// </summary>
    internal static async Task FinishAsync(MirrorChaosWorkload workload, Task changing, CancellationTokenSource stop, TempFolder temp,
        Dictionary<string, string> env, string cluster, List<Worker> workers, string what, ITestOutputHelper output)
    {
        var at = workload.Transactions;
        await CdcScenario.WaitUntilAsync(() => Task.FromResult(changing.IsCompleted || workload.Transactions >= at + 100), Patience,
            () => Task.FromResult($"the workload ran {workload.Transactions - at} transactions after the restart"));
        await stop.CancelAsync();
        await changing;
        output.WriteLine($"{workload.Transactions} transactions, {workload.Truncates} truncates");

        var differences = new List<string>();
        await CdcScenario.WaitUntilAsync(async () => (differences = await DifferencesAsync(workload, temp, env)).Count == 0, Patience,
            () => Task.FromResult($"{what}; {differences.Count} differences:\n{string.Join("\n", differences.Take(20))}\n{ClusterCdcTests.Stderr(workers)}"));
        // Each table has rows to compare (a truncate may have emptied one just before the end, not all three).
        var rows = 0;
        foreach (var (table, _, columns) in MirrorChaosWorkload.Tables) { rows += (await workload.RowsAsync(table, columns)).Count; }
        rows.ShouldBeGreaterThan(0, "the source tables are not all empty");
        Live(workers).Count.ShouldBe(2, ClusterCdcTests.Stderr(workers));
        // No change was refused (a value not carried with no version to take it from), and the workers folded the
        // mirror while others committed: the files a fold replaced wait out their 5-minute grace in the shared store.
        (await SharedAsync(cluster, "SELECT string_agg(reason, '; ') FROM {0}.dead_letters")).ShouldBeNull();
        (await SharedAsync(cluster, "SELECT count(*)::text FROM {0}.lake_garbage")).ShouldNotBe("0", "the mirror was folded");
    }

    /// <summary>One value of <paramref name="sql"/> (<c>{0}</c>: the cluster's schema) read from the shared metadata store.</summary>
    private static async Task<string?> SharedAsync(string cluster, string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(string.Format(CultureInfo.InvariantCulture, sql, $"sluice_meta_{cluster}"), connection);
        return await cmd.ExecuteScalarAsync() as string;
    }

    private static List<Worker> Live(IEnumerable<Worker> workers) => workers.Where(w => !w.Process.HasExited).ToList();

    /// <summary>For every table: the source's rows the lake mirror lacks and the mirror's rows the source lacks.</summary>
    internal static async Task<List<string>> DifferencesAsync(MirrorChaosWorkload workload, TempFolder temp, Dictionary<string, string> env)
    {
        var differences = new List<string>();
        foreach (var (table, _, columns) in MirrorChaosWorkload.Tables)
        {
            var source = await workload.RowsAsync(table, columns);
            var mirror = LakeRows(temp, env, table, columns);
            differences.AddRange(MirrorChaosTests.Except(source, mirror).Select(r => $"lake.{table} lacks {MirrorChaosTests.Clip(r)}"));
            differences.AddRange(MirrorChaosTests.Except(mirror, source).Select(r => $"lake.{table} has extra {MirrorChaosTests.Clip(r)}"));
        }

        return differences;
    }

    /// <summary>A mirrored table's rows as <c>sluice query --cluster --format json</c> gives them (none while the lake has no such table).</summary>
    private static List<string> LakeRows(TempFolder temp, Dictionary<string, string> env, string table, string[] columns)
    {
        using var p = SluiceProcess.StartIn(temp.Path, Directory.CreateDirectory(temp.Sub("elsewhere")).FullName, env,
            "query", $"SELECT {string.Join(", ", columns)} FROM mirror.{table}", "--format", "json", "--cluster");
        var code = p.WaitAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        if (code != 0 && p.Stderr.Contains($"mirror.{table}", StringComparison.Ordinal)) { return []; }
        code.ShouldBe(0, p.Stderr);
        using var json = JsonDocument.Parse(p.Stdout);
        return json.RootElement.EnumerateArray().Select(row => MirrorRows.Line(columns.Select(c => Value(c, row.GetProperty(c))))).ToList();
    }

    /// <summary>A JSON value as the type Postgres's reader gives the column, so that both sides read as one canonical text.</summary>
    private static object? Value(string column, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ when Typed.TryGetValue(column, out var typed) => typed(v),
        JsonValueKind.Number => v.GetInt64(),
        _ => v.GetString(),
    };

    /// <summary>An instant as the query prints it (ISO with Z, or <c>yyyy-MM-dd HH:mm:ss.ffffff</c> with or without <c>+00</c>), in UTC.</summary>
    private static DateTime Instant(string text) =>
        DateTime.Parse(text.EndsWith("+00", StringComparison.Ordinal) ? text[..^3] : text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>
    /// A live worker leasing a partition that carries a mirrored table's changes (each table is one partition: the
    /// hash of its name), other than <paramref name="holder"/> when another leases one.
    /// </summary>
    private static async Task<Worker> ReaderAsync(string cluster, IReadOnlyList<Worker> workers, Worker holder)
    {
        var parts = MirrorChaosWorkload.Tables.Select(t => (int)(System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(t.Table)) % 16)).ToArray();
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var pids = new HashSet<int>();
            await using (var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
            {
                await connection.OpenAsync();
                // The owner is host/pid/random (ClusterHttpSource).
                await using var cmd = new NpgsqlCommand($"SELECT owner FROM sluice_meta_{cluster}.partition_leases WHERE owner IS NOT NULL AND part = ANY($1)", connection);
                cmd.Parameters.AddWithValue(parts);
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync()) { pids.Add(int.Parse(r.GetString(0).Split('/')[^2], CultureInfo.InvariantCulture)); }
            }

            var owners = Live(workers).Where(w => pids.Contains(w.Process.Pid)).ToList();
            if ((owners.FirstOrDefault(w => w != holder) ?? owners.FirstOrDefault()) is { } reader) { return reader; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, "no live worker leases a partition of the mirrored tables");
            await Task.Delay(200);
        }
    }
}
