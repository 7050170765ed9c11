using System.Text.Json;
using StackExchange.Redis;
using Sluice.Connectors.Redis;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>What both Redis fixtures share: keys under a prefix of their own on the shared server, removed at the end, and a proxy in front of it.</summary>
public abstract class RedisFixtureBase : SinkFixture
{
    protected string Prefix { get; } = $"conf:{Guid.NewGuid():N}:";

    public override Engine Engine { get; } = new();

    protected static string Url(ITransientFault? fault) => fault is FlakyProxy proxy ? $"redis://127.0.0.1:{proxy.Port}" : ServerSettings.RedisUrl;

    protected async Task<(IDatabase Db, List<string> Keys, ConnectionMultiplexer Redis)> KeysAsync(string pattern)
    {
        var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(ServerSettings.RedisUrl));
        var keys = new List<string>();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: Prefix + pattern)) { keys.Add(key!); }
        return (redis.GetDatabase(), keys, redis);
    }

    public override Task<ITransientFault> FaultAsync()
    {
        var options = RedisUrl.Parse(ServerSettings.RedisUrl);
        var (host, port) = options.EndPoints[0] switch
        {
            System.Net.DnsEndPoint d => (d.Host, d.Port),
            System.Net.IPEndPoint ip => (ip.Address.ToString(), ip.Port),
            var other => throw new InvalidOperationException($"unexpected endpoint {other}"),
        };
        return Task.FromResult<ITransientFault>(new FlakyProxy(host, port));
    }

    protected override async Task CleanUpAsync()
    {
        var (db, keys, redis) = await KeysAsync("*");
        await using (redis)
        {
            foreach (var key in keys) { await db.KeyDeleteAsync(key); }
        }

    }
}

/// <summary>The generic <c>redis</c> sink, <c>mode: hash</c>: one hash per item key, replaced by its last write.</summary>
public sealed class RedisHashSinkFixture : RedisFixtureBase
{
    public override SinkKind Kind => SinkKind.Keyed;

    public override ISinkType Type => new RedisSinkType();

    public override string MirrorOption => "table: items\nkey: \"item:{id}\"\nmode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) => new RedisSink(Engine.Services, new RedisSinkOptions
    {
        Url = Url(fault),
        Table = "items",
        Mode = RedisSinkMode.Hash,
        Key = RedisKeyTemplate.Parse(Prefix + "item:{id}", out _)!,
        RetryDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
    });

    public override async Task<List<string>> ReadAsync()
    {
        var (db, keys, redis) = await KeysAsync("item:*");
        await using (redis)
        {
            var rows = new List<string>();
            foreach (var key in keys.Where(k => !k.EndsWith(":_pos", StringComparison.Ordinal)))
            {
                rows.Add(SinkRows.Text((await db.HashGetAllAsync(key)).Select(e => ((string)e.Name!, (object?)(string?)e.Value))));
            }

            return rows.Order(StringComparer.Ordinal).ToList();
        }
    }
}

/// <summary>
/// <c>redis_realtime</c>: per item (its entity) the newest event as JSON and the count of distinct events. Keyed, and
/// more: each key's count must be the number of rows written for it, each once.
/// </summary>
public sealed class RedisRealtimeSinkFixture : RedisFixtureBase
{
    public override SinkKind Kind => SinkKind.Keyed;

    public override ISinkType Type => new RedisRealtimeSinkType();

    public override string MirrorOption => "mode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) => new RedisRealtimeSink(Engine.Services, new RedisRealtimeOptions
    {
        Url = Url(fault),
        KeyPrefix = Prefix,
        Entity = "item",
        EntityColumn = "id",
        RetryDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
    });

    /// <summary>The suite's rows as enriched events: the item is the entity, the position the event id, the row's time the event time.</summary>
    public override RecordBatch Batch(IReadOnlyList<Item> rows)
    {
        var items = ConformanceRows.Batch(rows).Tables[0];
        var fields = new List<FieldSpec>(items.Schema.Fields) { new("event_id", FieldType.Integer, true), new("event_ts", FieldType.Timestamp, true) };
        var columns = new List<Array>(items.Columns) { rows.Select(r => (long?)r.Offset).ToArray(), rows.Select(r => (DateTime?)r.Time).ToArray() };
        return new RecordBatch(new ColumnBatch(new TableSchema("events_enriched", fields), columns.ToArray(), rows.Count), rows[^1].Offset + Item.Span);
    }

    public override List<string> Expected(IReadOnlyList<Item> written) =>
        written.GroupBy(r => r.Id).Select(g => $"{g.Last().Text} count={g.Count()}").Order(StringComparer.Ordinal).ToList();

    public override async Task<List<string>> ReadAsync()
    {
        var (db, keys, redis) = await KeysAsync("item:last:*");
        await using (redis)
        {
            var rows = new List<string>();
            foreach (var key in keys)
            {
                var last = JsonDocument.Parse((string)(await db.StringGetAsync(key))!).RootElement;
                var count = (long)await db.StringGetAsync(key.Replace(":last:", ":count:", StringComparison.Ordinal));
                rows.Add(SinkRows.Text(last.EnumerateObject().Select(p => (p.Name, p.Value.ValueKind == JsonValueKind.Null ? null : (object?)(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText())))) + $" count={count}");
            }

            return rows.Order(StringComparer.Ordinal).ToList();
        }
    }
}
