using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A postgres mirror on a cluster through JetStream (the default): its tombstones go once the consuming worker proves
/// the low-water mark from the relay's marks and the stream's first sequence, and the mirror still equals the source
/// (docs/SCALING.md, "Tombstones and the low-water mark").
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterMirrorTombstonesTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    /// <summary>Above the scenario's own content rows.</summary>
    private const long Base = 1_000_000;

    [Fact]
    public async Task A_mirrors_tombstones_are_pruned_below_the_mark_a_worker_proves_and_the_mirror_equals_its_source()
    {
        var schema = "tomb_" + Guid.NewGuid().ToString("N")[..8];
        // engagement-cdc's tables mirrored into a schema of their own: no enrichment, no jobs. With the slot's snapshot,
        // so rows written while the slot is still being created (it waits for running transactions) reach the mirror too.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y =>
        {
            y = y[..y.IndexOf("\njobs:", StringComparison.Ordinal)];
            return y[..y.IndexOf("    steps:", StringComparison.Ordinal)] +
                   $"    sinks:\n      - type: postgres\n        connection: \"{ServerSettings.PostgresConnectionString}\"\n        schema: {schema}\n        mode: mirror\n";
        });
        await using var nats = await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ctomb" + scenario.Id;
        var env = ClusterCdcJetStreamTests.Environment(scenario, nats, cluster);
        env.Remove("SLUICE_CLUSTER_CDC"); // the default: through JetStream
        var worker = new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "worker")).FullName, env);
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            await worker.WaitStartedAsync();
            // Streaming: the slot exists (its creation waits for running transactions) and its snapshot is read, so every
            // change below is a change of the stream, each delete a tombstone.
            await CdcScenario.WaitUntilAsync(() => Task.FromResult(worker.Process.Stderr.Contains($"Streaming {scenario.Slot} from", StringComparison.Ordinal)), Patience,
                () => Task.FromResult("the slot is not streamed: " + worker.Process.Stderr));
            await scenario.ExecuteAsync($"INSERT INTO content SELECT {Base} + g, 'video', g, 'title ' || g FROM generate_series(1, 50) g");
            // Forty deletes, one transaction each: forty tombstones in the mirror.
            for (var id = 1; id <= 40; id++) { await scenario.ExecuteAsync($"DELETE FROM content WHERE content_id = {Base + id}"); }
            await CdcScenario.WaitUntilAsync(async () => await MirrorAsync(schema) == await SourceAsync(scenario), Patience,
                async () => $"mirror {await MirrorAsync(schema)}\nsource {await SourceAsync(scenario)}\n{worker.Process.Stderr}");

            // Later changes carry the relay's marks past the deletes; once their messages before are acknowledged the
            // worker proves the mark, and the mirror's next write prunes below it.
            var updates = 0;
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await scenario.ExecuteAsync($"UPDATE content SET length_seconds = {1000 + i} WHERE content_id = {Base + 41 + (i % 10)}");
                    Interlocked.Increment(ref updates);
                    await Task.Delay(200);
                }
            });
            await CdcScenario.WaitUntilAsync(async () => await TombstonesAsync(schema) == 0, Patience,
                async () => $"{await TombstonesAsync(schema)} of 40 tombstones left after {Volatile.Read(ref updates)} later updates\n{worker.Process.Stderr}");
            await stopWriting.CancelAsync();
            await writer;

            // The prune removed nothing a change still needed: every key as the source holds it.
            await CdcScenario.WaitUntilAsync(async () => await MirrorAsync(schema) == await SourceAsync(scenario), Patience,
                async () => $"mirror {await MirrorAsync(schema)}\nsource {await SourceAsync(scenario)}\n{worker.Process.Stderr}");
            (await scenario.ScalarAsync<long>($"SELECT count(*) FROM content WHERE content_id > {Base}")).ShouldBe(10);
        }
        finally
        {
            await stopWriting.CancelAsync();
            if (writer is not null) { await writer.ContinueWith(_ => { }, TaskScheduler.Default); }
            worker.Dispose();
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
            await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
    }

    private static Task<string> SourceAsync(CdcScenario scenario) =>
        scenario.ScalarAsync<string>($"SELECT coalesce(string_agg(content_id || ':' || length_seconds, ',' ORDER BY content_id), '') FROM content WHERE content_id > {Base}");

    private static async Task<string> MirrorAsync(string schema) =>
        await SharedAsync<string>($"{schema}.content", $"SELECT coalesce(string_agg(content_id || ':' || length_seconds, ',' ORDER BY content_id), '') FROM {schema}.content WHERE content_id > {Base}") ?? "none";

    private static async Task<long> TombstonesAsync(string schema) =>
        await SharedAsync<long?>($"{schema}.{PostgresMirror.DeletedTable}", $"SELECT count(*) FROM {schema}.{PostgresMirror.DeletedTable} WHERE table_name = 'content'") ?? -1;

    /// <summary><paramref name="sql"/>'s value, or default while <paramref name="table"/> does not exist yet (checked first: a statement naming a missing table fails).</summary>
    private static async Task<T?> SharedAsync<T>(string table, string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using (var exists = new NpgsqlCommand($"SELECT to_regclass('{table}') IS NOT NULL", connection))
        {
            if (await exists.ExecuteScalarAsync() is not true) { return default; }
        }

        await using var cmd = new NpgsqlCommand(sql, connection);
        return await cmd.ExecuteScalarAsync() is T value ? value : default;
    }
}
