using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.SinkConformance;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The postgres sink's fence in cluster mode (<see cref="BatchFence"/>, <c>_sluice_partition_marks</c>): workers keep
/// their sink checkpoints under keys of their own (<c>...:worker:&lt;id&gt;</c>), but a partition's mark must be one
/// for all of them, or a worker that lost a partition's lease while it held a batch would write it over what the new
/// owner wrote.
/// </summary>
public sealed class PostgresSinkFenceTests : IAsyncDisposable
{
    private const string Stream = "SLUICE_r_s";
    private readonly string _schema = "fence_" + Guid.NewGuid().ToString("N")[..8];
    private readonly Engine _engine = new();

    [Fact]
    public async Task A_batch_of_an_older_lease_is_refused_after_another_worker_committed_the_partition_under_a_newer_one()
    {
        await using var sink = Sink();
        var rows = ConformanceRows.Stream(4, 4);
        // Worker b took partition 3 over (token 2) and committed its rows first.
        var newer = ConformanceRows.Batch(rows.Select(r => r with { Name = "new" }).ToList()) with { Fence = Fence(3, 2, 40) };
        await sink.WriteAsync(newer, Key("b"), CancellationToken.None);

        // Worker a, paused past its lease (token 1), wakes up holding older rows of the same partition.
        var stale = ConformanceRows.Batch(rows.Select(r => r with { Name = "stale" }).ToList()) with { Fence = Fence(3, 1, 40) };
        var refused = await Should.ThrowAsync<FencedBatchException>(() => sink.WriteAsync(stale, Key("a"), CancellationToken.None));
        refused.Message.ShouldContain("partition 3");
        (await ScalarAsync($"SELECT count(*) FROM {_schema}.items WHERE name = 'stale'")).ShouldBe(0, "nothing of the stale batch was written");
        (await ScalarAsync($"SELECT count(*) FROM {_schema}.items WHERE name = 'new'")).ShouldBe(4);

        // The partition's owner goes on; another partition of worker a's is not fenced by it.
        await sink.WriteAsync(ConformanceRows.Batch(ConformanceRows.Stream(1, 1, from: 5)) with { Fence = Fence(3, 2, 50) }, Key("b"), CancellationToken.None);
        await sink.WriteAsync(ConformanceRows.Batch(ConformanceRows.Stream(1, 1, from: 9)) with { Fence = Fence(4, 1, 60) }, Key("a"), CancellationToken.None);
        (await ScalarAsync($"SELECT count(DISTINCT checkpoint_key) FROM {_schema}._sluice_partition_marks")).ShouldBe(1, "one mark per partition for every worker of the sink");
    }

    private static string Key(string worker) => StreamPipeline.SinkCheckpointKey("r", "p", "postgres") + ":" + WorkerCheckpointScope.Of(worker);

    private static BatchFence Fence(int partition, long token, long sequence) => new([new PartitionMark(Stream, partition, token, sequence)]);

    private PostgresSink Sink() => new(_engine.Services, new PostgresSinkOptions
    {
        Connection = ServerSettings.PostgresConnectionString,
        Schema = _schema,
        Keys = new Dictionary<string, IReadOnlyList<string>> { ["items"] = ["id"] },
    });

    private static async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        await using (var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE", connection);
            await cmd.ExecuteNonQueryAsync();
        }

        _engine.Dispose();
    }
}
