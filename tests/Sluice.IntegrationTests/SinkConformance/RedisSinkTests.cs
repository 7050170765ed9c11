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

    [Theory]
    [InlineData(RedisSinkMode.Set)]
    [InlineData(RedisSinkMode.Hash)]
    public async Task A_change_streams_delete_removes_its_key_and_a_truncate_removes_only_the_keys_the_sink_wrote(RedisSinkMode mode)
    {
        var db = _redis.GetDatabase();
        // Keys the sink did not write, one of them under its own key pattern: a truncate must leave them alone.
        await db.StringSetAsync($"{_prefix}name:99", "not the sink's");
        await db.StringSetAsync($"{_prefix}other", "not the sink's");
        RecordBatch[] batches =
        [
            Changes(("c", 1, "a", 10, 1), ("c", 2, "b", 10, 2), ("c", 3, "c", 10, 3)),
            Changes(("d", 2, null, 20, 1), ("u", 1, "a2", 20, 2)),
            Changes(("c", 4, "d", 30, 1), ("t", null, null, 30, 2), ("c", 5, "e", 30, 3)),
        ];
        await using var sink = new RedisSink(_engine.Services, new RedisSinkOptions
        {
            Url = ServerSettings.RedisUrl, Table = "items", Mode = mode, Key = RedisKeyTemplate.Parse(_prefix + "name:{id}", out _)!, Value = mode == RedisSinkMode.Set ? "name" : null,
        });
        async Task<string?> Name(int id) => mode == RedisSinkMode.Set ? await db.StringGetAsync($"{_prefix}name:{id}") : await db.HashGetAsync($"{_prefix}name:{id}", "name");

        await sink.WriteAsync(batches[0], "k", CancellationToken.None);
        await sink.WriteAsync(batches[1], "k", CancellationToken.None);
        (await Name(1)).ShouldBe("a2");
        (await db.KeyExistsAsync($"{_prefix}name:2")).ShouldBeFalse("the delete removed the key");
        (await Name(3)).ShouldBe("c");

        // A replay of the insert (a crash before the checkpoint) does not bring the deleted key back.
        await sink.WriteAsync(batches[0], "k", CancellationToken.None);
        (await db.KeyExistsAsync($"{_prefix}name:2")).ShouldBeFalse("a replayed insert older than the delete");
        (await Name(1)).ShouldBe("a2");

        await sink.WriteAsync(batches[2], "k", CancellationToken.None);
        foreach (var batch in batches) { await sink.WriteAsync(batch, "k", CancellationToken.None); }
        var keys = new List<string>();
        await foreach (var key in _redis.GetServers()[0].KeysAsync(pattern: _prefix + "*")) { keys.Add(key.ToString()[_prefix.Length..]); }
        keys.Where(k => !k.EndsWith(":_pos", StringComparison.Ordinal) && !k.StartsWith("name:{id}", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray()
            .ShouldBe(new[] { "name:5", "name:99", "other" }, "the truncate removed the keys the sink wrote before it, and nothing else; replays before it change nothing");
        (await Name(5)).ShouldBe("e");
        ((string?)await db.StringGetAsync($"{_prefix}name:99")).ShouldBe("not the sink's");
        (await db.SetMembersAsync(sink.OwnKeys)).Select(k => k.ToString()).ToArray().ShouldBe(new[] { $"{_prefix}name:5" });
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

    private static RecordBatch Changes(params (string Op, long? Id, string? Name, long Lsn, long Seq)[] rows)
    {
        var schema = new TableSchema("items", [new("id", FieldType.Integer, false), new("name", FieldType.String, false), new(ChangeEnvelope.Op, FieldType.String, true), new(ChangeEnvelope.Lsn, FieldType.Integer, true), new(ChangeEnvelope.Seq, FieldType.Integer, true)]);
        Array[] columns = [rows.Select(r => r.Id).ToArray(), rows.Select(r => r.Name).ToArray(), rows.Select(r => r.Op).ToArray(), rows.Select(r => (long?)r.Lsn).ToArray(), rows.Select(r => (long?)r.Seq).ToArray()];
        return new RecordBatch(new ColumnBatch(schema, columns, rows.Length), rows[^1].Lsn);
    }
}
