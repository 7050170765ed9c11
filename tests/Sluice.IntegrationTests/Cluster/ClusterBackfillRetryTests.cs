using System.Text.Json;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A cluster's backfill (<see cref="ClusterBackfillTests"/>'s recipe) while its JetStream has no quorum: the page it
/// does not store is published again (<see cref="PostgresBackfillJob.PublishRetry"/>, warning 27651) until the nodes
/// are back, and the backfill ends with every row in each sink once. On the test's own NATS cluster, whose nodes it kills.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterBackfillRetryTests
{
    /// <summary>Generous: two workers, a CLI, three NATS nodes and DuckDB queries share two cores with other sessions' builds and tests.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    private const string NotStored = "did not store a backfill page";

    [Fact]
    public async Task A_backfill_page_refused_while_jetstream_has_no_quorum_is_published_again_once_it_has_and_every_sink_holds_each_row_once()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: ClusterBackfillTests.Recipe);
        await scenario.InsertAsync(ClusterBackfillTests.Rows, rowsPerStatement: 500, seed: 28);
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "cbfr" + scenario.Id;
        var env = ClusterEnvironment.Cdc(cluster, scenario.ProcessEnvironment, nats, cdc: null);
        env["SLUICE_CLUSTER_FOLDER"] = Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "shared")).FullName;
        env["SLUICE_CLUSTER_ACK_WAIT"] = "5";
        env["SLUICE_CLUSTER_LEASE"] = "5";
        var workers = new List<Worker>();
        try
        {
            for (var i = 0; i < 2; i++) { workers.Add(new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env)); }
            foreach (var w in workers) { await w.WaitStartedAsync(); }

            using var cli = SluiceProcess.StartIn(scenario.DataRoot, Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "cli")).FullName, env,
                "backfill", "engagement-cdc/backfill", "--from", "2000-01-01", "--to", "2099-12-31", "--cluster");

            // Not by timing: once the backfill recorded a stored page its progress row is locked, so it records no
            // other before two of the three nodes are killed, and the next page it publishes, or the one after, finds
            // no quorum: mid-backfill, with pages stored before.
            var (store, held, progress) = await HoldProgressAsync(cluster, cli);
            await using (store)
            await using (held)
            {
                progress.Done.ShouldBeFalse($"the backfill ended before it could be held: {progress}");
                nats.Kill(1);
                nats.Kill(2);
                await held.CommitAsync();
            }

            await UntilAsync(() => cli.Stderr.Contains(NotStored, StringComparison.Ordinal) || cli.HasExited,
                "the CLI's warning that JetStream did not store a page", cli, workers);
            cli.Stderr.ShouldContain(NotStored + " (", customMessage: $"the CLI exited before JetStream refused a page\n{cli.Stderr}");
            cli.Stderr.ShouldContain("attempt 1 of 9");
            cli.HasExited.ShouldBeFalse($"the CLI gave up while the nodes were down\n{cli.Stderr}");

            // Back well within the retry's two minutes of pauses: quorum needs the nodes to listen, not to have caught up.
            nats.Start(1);
            nats.Start(2);
            (await cli.WaitAsync(Patience)).ShouldBe(0, $"the backfill did not end well once the nodes were back\n{cli.Stderr}");

            var runs = await ClusterBackfillTests.RunsAsync(cluster);
            runs.Select(r => (r.Trigger, r.Status)).ShouldBe([("backfill", "succeeded")], string.Join("\n", runs));
            runs[0].Message.ShouldContain($"{ClusterBackfillTests.Rows} rows of public.engagement_events");
            runs[0].Message.ShouldContain($"in {ClusterBackfillTests.Rows / 200} pages");
            await ClusterBackfillTests.EverySinkHoldsEachRowOnceAsync(scenario, env, workers);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
        }
    }

    /// <summary>
    /// The backfill's progress row in the shared store, locked (<c>FOR UPDATE</c>, in the returned transaction) once it
    /// records at least one stored page: the runner's next record waits until the transaction ends.
    /// </summary>
    private static async Task<(NpgsqlConnection Store, NpgsqlTransaction Held, PgBackfillProgress Progress)> HoldProgressAsync(string cluster, SluiceProcess cli)
    {
        var store = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await store.OpenAsync();
        var deadline = DateTime.UtcNow + Patience;
        var last = "no progress row";
        while (true)
        {
            var tx = await store.BeginTransactionAsync();
            await using (var select = new NpgsqlCommand($"SELECT value FROM sluice_meta_{cluster}.checkpoints WHERE key = @key FOR UPDATE", store, tx))
            {
                select.Parameters.AddWithValue("key", PgBackfillProgress.KeyOf("engagement-cdc", "backfill"));
                if (await select.ExecuteScalarAsync() is string value && JsonSerializer.Deserialize<PgBackfillProgress>(value) is { } progress)
                {
                    if (progress.Pages > 0 || progress.Done) { return (store, tx, progress); }
                    last = value;
                }
            }

            await tx.RollbackAsync();
            await tx.DisposeAsync();
            if (cli.HasExited || DateTime.UtcNow > deadline)
            {
                await store.DisposeAsync();
                throw new TimeoutException($"the backfill recorded no stored page within {Patience.TotalSeconds:0} s (exited: {cli.HasExited}; last: {last})\n{cli.Stderr}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Polls <paramref name="done"/> every 200 ms; past <see cref="Patience"/> the test fails with <paramref name="what"/>, the CLI's and the workers' output.</summary>
    private static async Task UntilAsync(Func<bool> done, string what, SluiceProcess cli, List<Worker> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!done())
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what}: not within {Patience.TotalSeconds:0} s\nCLI:\n{cli.Stderr}\n{ClusterCdcTests.Stderr(workers)}");
            await Task.Delay(200);
        }
    }
}
