using Microsoft.Data.Sqlite;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;

namespace Sluice.Tests.Core;

/// <summary>
/// The sinks' checkpoints go to the metadata store by group commit: those that arrive while one is being written share
/// the next transaction, each sink is released only once the transaction holding its checkpoint has committed, and a
/// failed transaction fails every sink in it (none is told its checkpoint is durable when it is not).
/// </summary>
public sealed class SinkCheckpointGroupTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sluice-checkpoint-group-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Checkpoints_arriving_during_a_write_share_the_next_transaction_and_wait_for_it()
    {
        var groups = new List<Dictionary<string, string>>();
        using var firstStarted = new ManualResetEventSlim();
        using var releaseFirst = new ManualResetEventSlim();
        using var releaseSecond = new ManualResetEventSlim();
        var group = new SinkCheckpointGroup(values =>
        {
            lock (groups) { groups.Add(new Dictionary<string, string>(values)); }
            if (groups.Count == 1) { firstStarted.Set(); releaseFirst.Wait(TimeSpan.FromSeconds(10)); }
            else { releaseSecond.Wait(TimeSpan.FromSeconds(10)); }
        });

        var clickhouse = Task.Run(() => group.SetAsync("pipeline:r/p:sink:clickhouse", "10"));
        firstStarted.Wait(TimeSpan.FromSeconds(10)).ShouldBeTrue();
        var redis = group.SetAsync("pipeline:r/p:sink:redis", "10");
        var api = group.SetAsync("pipeline:r/p:sink:api", "10");
        redis.IsCompleted.ShouldBeFalse("redis's checkpoint waits for the transaction that holds it");

        releaseFirst.Set();
        await clickhouse.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(50);
        redis.IsCompleted.ShouldBeFalse("the second transaction has not committed yet");
        api.IsCompleted.ShouldBeFalse();

        releaseSecond.Set();
        await Task.WhenAll(redis, api).WaitAsync(TimeSpan.FromSeconds(10));
        groups.Count.ShouldBe(2, "three checkpoints, two transactions");
        groups[0].Keys.ShouldBe(["pipeline:r/p:sink:clickhouse"]);
        groups[1].Keys.Order(StringComparer.Ordinal).ShouldBe(["pipeline:r/p:sink:api", "pipeline:r/p:sink:redis"]);
    }

    [Fact]
    public async Task A_failed_transaction_fails_every_sink_in_it_and_the_next_ones_still_go()
    {
        var calls = 0;
        var group = new SinkCheckpointGroup(_ =>
        {
            if (Interlocked.Increment(ref calls) == 1) { throw new SqliteException("SQLite Error 13: 'database or disk is full'.", 13); }
        });

        var failed = group.SetAsync("a", "1");
        (await Should.ThrowAsync<SqliteException>(failed)).SqliteErrorCode.ShouldBe(13);
        await group.SetAsync("a", "1").WaitAsync(TimeSpan.FromSeconds(10));
        calls.ShouldBe(2);
    }

    [Fact]
    public void A_group_is_written_in_one_transaction_all_or_nothing()
    {
        var store = new CheckpointStore(new MetadataStore(new DataDirectory(_root)), TimeProvider.System);
        store.Set("a", "1");
        store.SetAll(new Dictionary<string, string>(StringComparer.Ordinal) { ["a"] = "2", ["b"] = "2" });
        store.Get("a").ShouldBe("2");
        store.Get("b").ShouldBe("2");

        // A value SQLite refuses midway (NOT NULL) rolls the whole group back: "a" keeps the value of the last group.
        Should.Throw<SqliteException>(() => store.SetAll(new Dictionary<string, string>(StringComparer.Ordinal) { ["a"] = "3", ["c"] = null! }));
        store.Get("a").ShouldBe("2");
        store.Get("c").ShouldBeNull();
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root)) { Directory.Delete(_root, recursive: true); }
    }
}
