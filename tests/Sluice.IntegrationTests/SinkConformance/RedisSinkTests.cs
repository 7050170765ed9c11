using StackExchange.Redis;
using Sluice.Connectors.Redis;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>The generic <c>redis</c> sink's own modes beyond the suite's hash: counters that never count a replay twice, strings with a TTL, and its options.</summary>
public sealed class RedisSinkTests : IAsyncLifetime, IDisposable
{
    private readonly string _prefix = $"conf:{Guid.NewGuid():N}:";
    private readonly Engine _engine = new();
    private ConnectionMultiplexer _redis = null!;

    public async Task InitializeAsync() => _redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(ServerSettings.RedisUrl));

    public async Task DisposeAsync()
    {
        await foreach (var key in _redis.GetServers()[0].KeysAsync(pattern: _prefix + "*")) { await _redis.GetDatabase().KeyDeleteAsync(key); }
        await _redis.DisposeAsync();
    }

    public void Dispose() => _engine.Dispose();

    private RedisSink Sink(RedisSinkMode mode, string key, string? by = null, string? value = null, TimeSpan? ttl = null) => new(_engine.Services, new RedisSinkOptions
    {
        Url = ServerSettings.RedisUrl, Table = "items", Mode = mode, Key = RedisKeyTemplate.Parse(_prefix + key, out _)!, By = by, Value = value, Ttl = ttl,
    });

    [Fact]
    public async Task A_counter_counts_each_row_once_when_a_replay_is_cut_into_other_batches()
    {
        var rows = ConformanceRows.Stream(12, keys: 3);
        await using (var first = Sink(RedisSinkMode.Counter, "qty:{id}", by: "qty"))
        {
            foreach (var batch in ConformanceRows.Cut(rows, 5, 2)) { await first.WriteAsync(ConformanceRows.Batch(batch), "k", CancellationToken.None); }
        }

        // A restart replays from before the first batch, joined and cut elsewhere.
        await using (var second = Sink(RedisSinkMode.Counter, "qty:{id}", by: "qty"))
        {
            foreach (var batch in ConformanceRows.Cut(rows, 3, 9)) { await second.WriteAsync(ConformanceRows.Batch(batch), "k", CancellationToken.None); }
            await second.WriteAsync(ConformanceRows.Batch(rows), "k", CancellationToken.None);
            second.LastChanged.ShouldBe(0, "a batch of nothing new changes no key");
        }

        foreach (var group in rows.GroupBy(r => r.Id))
        {
            ((long)await _redis.GetDatabase().StringGetAsync($"{_prefix}qty:{group.Key}")).ShouldBe(group.Sum(r => r.Qty), $"key {group.Key}: each row's qty once");
        }
    }

    [Fact]
    public async Task A_counter_refuses_a_table_without_positions_and_names_the_option()
    {
        await using var sink = Sink(RedisSinkMode.Counter, "n:{id}");
        var items = ConformanceRows.Batch(ConformanceRows.Stream(2, keys: 2)).Tables[0];
        var without = new ColumnBatch(new TableSchema("items", items.Schema.Fields.Take(4).ToList()), items.Columns.Take(4).ToArray(), items.Count);
        var error = await Should.ThrowAsync<Core.SluiceException>(() => sink.WriteAsync(new RecordBatch(without, 1), "k", CancellationToken.None));
        error.Message.ShouldContain("position_column");
        error.Message.ShouldContain("'items'");
    }

    [Fact]
    public async Task A_set_keeps_the_last_value_with_its_ttl_and_an_older_replay_does_not_put_it_back()
    {
        var rows = ConformanceRows.Stream(6, keys: 2);
        await using var sink = Sink(RedisSinkMode.Set, "name:{id}", value: "name", ttl: TimeSpan.FromMinutes(5));
        await sink.WriteAsync(ConformanceRows.Batch(rows), "k", CancellationToken.None);
        await sink.WriteAsync(ConformanceRows.Batch(rows.Take(2).ToList()), "k", CancellationToken.None);

        var db = _redis.GetDatabase();
        ((string?)await db.StringGetAsync($"{_prefix}name:1")).ShouldBe("w5");
        ((string?)await db.StringGetAsync($"{_prefix}name:2")).ShouldBe("w6");
        (await db.KeyTimeToLiveAsync($"{_prefix}name:1")).ShouldNotBeNull().TotalSeconds.ShouldBeInRange(200, 300);
    }

    [Fact]
    public void Options_are_checked_at_load_with_their_line()
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse("table: items\nmode: counter\nkey: \"user:{user_id\"\nvalue: name\nttl: 0s\n", "recipe.yaml", errors)!;
        new RedisSinkType().Parse(map, new RecipeContext("r", _engine.DataRoot, errors));
        map.Done();
        errors.All.Select(e => $"{e.Line}:{e.Key}").ShouldBe(["3:key", "5:ttl", "4:value"], string.Join("\n", errors.All));
        errors.All[0].Message.ShouldContain("is not closed");
        errors.All[2].Message.ShouldContain("mode: set");

        var none = new ConfigErrors();
        var plain = ConfigMap.Parse("table: items\nkey: \"items\"\n", "recipe.yaml", none)!;
        new RedisSinkType().Parse(plain, new RecipeContext("r", _engine.DataRoot, none));
        none.All.ShouldHaveSingleItem().Message.ShouldContain("names no column");
    }
}
