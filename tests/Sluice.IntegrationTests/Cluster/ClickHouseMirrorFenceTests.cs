using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.SinkConformance;
using static Sluice.IntegrationTests.SinkConformance.MirrorBatches;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The ClickHouse mirror's fence in cluster mode (<see cref="BatchFence"/>, <c>&lt;table&gt;_sluice_marks</c>): a worker
/// paused past its partition's lease wakes up holding a batch, after the partition's new owner wrote under a newer
/// token. ClickHouse has no transactions, so each statement checks the tokens as it starts: the stale batch writes
/// nothing and is refused (docs/SCALING.md, "Across batches, per key").
/// </summary>
public sealed class ClickHouseMirrorFenceTests : IAsyncLifetime
{
    private const string Stream = "SLUICE_r_cdc_p";
    private ClickHouseSinkFixture Fixture { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Fixture.DisposeAsync();

    [Fact]
    public async Task A_batch_of_an_older_lease_writes_nothing_and_is_refused_after_the_new_owner_wrote()
    {
        await using var sink = Fixture.CreateMirror();
        // Worker b took partition 3 over (token 2) and wrote first.
        await sink.WriteAsync(Changes(10, ("c", 1, "new", 1)) with { Fence = Fence(3, 2, 40) }, "mirror", CancellationToken.None);

        // Worker a, paused past its lease (token 1), wakes up holding changes of the partition: a newer-looking update of
        // key 1 and a key the new owner has not written yet. Neither may land: the batch is the new owner's now.
        var stale = Changes(20, ("u", 1, "stale", 9), ("c", 7, "stale", 7)) with { Fence = Fence(3, 1, 30) };
        var refused = await Should.ThrowAsync<FencedBatchException>(() => sink.WriteAsync(stale, "mirror", CancellationToken.None));
        refused.Message.ShouldContain("partition 3");
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=new qty=1"], "nothing of the stale batch was written");

        // The partition's owner goes on; a batch of another partition under its own (older) token is not fenced by it;
        // a batch read outside partitions (one process) has no fence.
        await sink.WriteAsync(Changes(30, ("u", 1, "new2", 2)) with { Fence = Fence(3, 2, 50) }, "mirror", CancellationToken.None);
        await sink.WriteAsync(Changes(40, ("c", 9, "other", 9)) with { Fence = Fence(5, 1, 60) }, "mirror", CancellationToken.None);
        await sink.WriteAsync(Changes(50, ("c", 8, "plain", 8)), "mirror", CancellationToken.None);
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=1 name=new2 qty=2", "id=8 name=plain qty=8", "id=9 name=other qty=9"]);
    }

    private static BatchFence Fence(int partition, long token, long sequence) => new([new PartitionMark(Stream, partition, token, sequence)]);
}
