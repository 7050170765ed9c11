using StackExchange.Redis;
using Sluice.Connectors.Redis;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>The Redis sink's batch script against the real server: distinct counting across bitmap shards and BITFIELD calls.</summary>
public sealed class RedisRealtimeSinkTests
{
    private static readonly TableSchema Schema = new("events_enriched",
    [
        new FieldSpec("event_id", FieldType.Integer, false), new FieldSpec("content_id", FieldType.Integer, false), new FieldSpec("event_ts", FieldType.Timestamp, false),
    ]);

    [Fact]
    public async Task Events_count_once_across_shards_calls_repeats_in_a_batch_and_replays()
    {
        var prefix = $"t:{Guid.NewGuid():N}:";
        using var engine = new Engine();
        await using var sink = new RedisRealtimeSink(engine.Services, new RedisRealtimeOptions { Url = ServerSettings.RedisUrl, KeyPrefix = prefix });
        var now = DateTime.UtcNow;
        // 2,500 ids in shard 0 (three BITFIELD calls of at most 1,000), two in shard 1, one in shard 2, one id twice; content 1 or 2 by parity.
        var ids = Enumerable.Range(1, 2_500).Select(i => (long)i).Concat([(1L << RedisRealtimeSink.SeenShardBits) + 7, (1L << RedisRealtimeSink.SeenShardBits) + 8, (2L << RedisRealtimeSink.SeenShardBits) + 1, 1_001]).ToArray();
        var batch = Batch(ids, now);

        await sink.WriteAsync(batch, "unused", CancellationToken.None);

        sink.LastCounted.ShouldBe(ids.Length - 1);
        var expected = ids.Distinct().GroupBy(id => id % 2 + 1).ToDictionary(g => g.Key, g => (long)g.Count());
        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(ServerSettings.RedisUrl));
        var db = redis.GetDatabase();
        foreach (var (content, count) in expected)
        {
            ((long)await db.StringGetAsync($"{prefix}content:count:{content}")).ShouldBe(count);
            (await db.SortedSetScoreAsync($"{prefix}top:content:bucket:{now:yyyyMMddHHmm}", content.ToString(System.Globalization.CultureInfo.InvariantCulture))).ShouldBe(count);
        }

        // The same events again (a replay after a crash), and a batch of one new event among old ones.
        await sink.WriteAsync(batch, "unused", CancellationToken.None);
        sink.LastCounted.ShouldBe(0);
        await sink.WriteAsync(Batch([2_000, 2_501, 3], now), "unused", CancellationToken.None);
        sink.LastCounted.ShouldBe(1);
        ((long)await db.StringGetAsync($"{prefix}content:count:2")).ShouldBe(expected[2] + 1);
        ((long)await db.StringGetAsync($"{prefix}content:count:1")).ShouldBe(expected[1]);

        var server = redis.GetServers()[0];
        await foreach (var key in server.KeysAsync(pattern: $"{prefix}*")) { await db.KeyDeleteAsync(key); }
    }

    private static RecordBatch Batch(long[] ids, DateTime time) => new(new ColumnBatch(Schema,
    [
        ids.Select(id => (long?)id).ToArray(),
        ids.Select(id => (long?)(id % 2 + 1)).ToArray(),
        ids.Select(_ => (DateTime?)time).ToArray(),
    ], ids.Length), 1);
}
