using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The lake sink's <c>mode: mirror</c> in a <c>postgres_cdc</c> pipeline on two workers with
/// <c>SLUICE_CLUSTER_CDC=holder</c> (issue 18): the slot's holder runs the whole pipeline, the other stands by. The
/// mirror chaos workload (inserts, updates leaving a TOASTed body alone, deletes, key changes, truncates) on three
/// tables, the mirror folding every second, while holders die: the first right after a lake commit whose changes the
/// slot was never told of (the next holder reads them again), then the next holder by SIGKILL mid-stream. Then the
/// mirror, read as a user reads it (<c>sluice query --cluster</c>), equals each source table exactly, each row once
/// (EXCEPT ALL both ways empty), and no change was dead-lettered.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterHolderLakeMirrorTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_lake_mirror_with_the_holder_on_two_workers_equals_its_source_tables_after_two_holders_die()
    {
        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        await using var workload = new MirrorChaosWorkload(seed);
        await workload.CreateAsync();
        using var temp = new TempFolder("sluice-holder-mirror");
        var lake = MirrorTargets.All.Single(t => t.Name == "lake");
        var (_, env) = await workload.WriteRecipeAsync(temp, "lake-mirror-holder", [lake]);
        var cluster = "clhmir" + workload.Id;
        // The holder publishes nothing to NATS; cluster mode wants servers named all the same.
        foreach (var (k, v) in ClusterEnvironment.Of(cluster)) { env[k] = v; }
        env["SLUICE_CLUSTER_CDC"] = "holder";
        env["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(temp.Sub("shared")).FullName;
        string Folder(int i) => Directory.CreateDirectory(temp.Sub($"worker{i}")).FullName;

        // Worker 0 holds the slot alone and dies right after its sixth lake commit, before the slot hears of it: the
        // next holder reads those changes again from the slot's confirmed position.
        var doomed = new Worker(Folder(0), new Dictionary<string, string>(env) { ["SLUICE_CRASH_AT"] = "lake.sink-committed:6" }, "lake-mirror-holder");
        var workers = new List<Worker> { doomed };
        using var stop = new CancellationTokenSource();
        var changing = Task.CompletedTask;
        try
        {
            var differences = new List<string>();
            await CdcScenario.WaitUntilAsync(async () => doomed.Process.HasExited || (differences = await ClusterLakeMirrorTests.DifferencesAsync(workload, temp, env)).Count == 0, Patience,
                () => Task.FromResult($"the initial snapshot is not in the mirror: {differences.Count} differences\n{doomed.Process.Stderr}"));
            changing = Task.Run(() => workload.RunAsync(stop.Token));
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(doomed.Process.HasExited), Patience, () => Task.FromResult("worker 0 did not reach its crash point: " + doomed.Process.Stderr));
            doomed.Process.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at lake.sink-committed");
            workers.AddRange(new[] { Folder(1), doomed.Data }.Select(f => new Worker(f, env, "lake-mirror-holder")));
            foreach (var w in workers.Skip(1)) { await w.WaitStartedAsync(); }

            // The next holder, SIGKILLed once it has gone on with the workload (its own commits among the changes).
            var holder = await ClusterCdcTests.HolderAsync(workload.Pg, workers);
            var before = workload.Transactions;
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(changing.IsCompleted || workload.Transactions >= before + 50), Patience,
                () => Task.FromResult($"the workload ran {workload.Transactions - before} transactions under the second holder"));
            holder.Kill();
            output.WriteLine($"killed the holder pid {holder.Process.Pid} after {workload.Transactions} transactions");
            Worker? next = null;
            await CdcScenario.WaitUntilAsync(async () => (next = await ClusterCdcTests.HolderAsync(workload.Pg, workers)) != holder, Patience,
                () => Task.FromResult($"no worker took the slot after its holder's SIGKILL\n{ClusterCdcTests.Stderr(workers)}"));
            // The killed holder's data folder started again: two workers go on, one standing by.
            workers.Add(new Worker(holder.Data, env, "lake-mirror-holder"));
            await workers[^1].WaitStartedAsync();
            await ClusterLakeMirrorTests.FinishAsync(workload, changing, stop, temp, env, cluster, workers, $"seed {seed}; killed the holder pid {holder.Process.Pid}", output);
        }
        finally
        {
            await stop.CancelAsync();
            await changing.ContinueWith(_ => { }, TaskScheduler.Default);
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
        }
    }
}
