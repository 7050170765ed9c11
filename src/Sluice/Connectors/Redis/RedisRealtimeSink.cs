using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Redis;

public sealed class RedisRealtimeSinkType() : SinkType<RedisRealtimeOptions>("redis_realtime")
{
    protected override RedisRealtimeOptions ParseOptions(ConfigMap map, RecipeContext recipe) => RedisRealtimeOptions.Parse(map);

    protected override IBatchSink Create(RedisRealtimeOptions options, string recipe, IEngineServices services) => new RedisRealtimeSink(services, options);
}

/// <summary>
/// The write-up's real-time keys, per batch in one atomic script:
/// <c>{entity}:last:{id}</c> (JSON of the newest event, TTL 1 h), <c>{entity}:count:{id}</c> (distinct events, a plain
/// integer), <c>{top}:bucket:{YYYYMMDDHHMM}</c> (ZSET of events per entity in that minute, TTL 15 min) and
/// <c>{top}:10m</c> (the last ten buckets merged, TTL 120 s). Distinct counting uses a bitmap of event ids
/// (<c>events:seen:{id / 2^20}</c>, one bit per id, 128 KiB per million ids), so replays and backfills never count twice.
/// Connection failures are retried with back-off until the write succeeds or the pipeline stops.
/// </summary>
public sealed class RedisRealtimeSink : IBatchSink, Core.Status.IStatusSink
{
    public const int SeenShardBits = 20;

    private readonly IEngineServices _services;
    private readonly RedisRealtimeOptions _options;
    private readonly ILogger _log;
    private readonly RedisScriptRunner _runner;

    public RedisRealtimeSink(IEngineServices services, RedisRealtimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Redis");
        _runner = new RedisScriptRunner($"redis sink '{options.Name}'", options.Url, options.Retry, services.Time, _log);
    }

    public string Name => _options.Name;

    /// <summary>Batches waiting are applied in one script: the per-entity counts and the window are written once for all of them.</summary>
    public SinkJoining Joining => SinkJoining.Waiting(20_000);

    /// <summary>Events counted for the first time by the last batch (for tests and the benchmark).</summary>
    public long LastCounted { get; private set; }

    /// <summary>Retries show in the status figures (attempt, last error) while they last.</summary>
    public void AttachStatus(Core.Status.SinkStatus status) => _runner.Status = status;

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table != _options.Table || table.Count == 0) { continue; }
            var (keys, args) = Build(table);
            LastCounted = (long)await _runner.EvaluateAsync(RedisRealtimeScript.Source, keys, args, ct).ConfigureAwait(false);
        }
    }

    private (RedisKey[] Keys, RedisValue[] Args) Build(ColumnBatch table)
    {
        var keys = new List<RedisKey>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        int Key(string name)
        {
            if (!index.TryGetValue(name, out var i))
            {
                keys.Add(name);
                i = index[name] = keys.Count;
            }

            return i;
        }

        var p = _options.KeyPrefix;
        var idColumn = table.Schema.IndexOf(_options.EventIdColumn);
        var entityColumn = table.Schema.IndexOf(_options.EntityColumn);
        var timeColumn = table.Schema.IndexOf(_options.TimeColumn);
        var ids = idColumn >= 0 ? table.Columns[idColumn] as long?[] : null;
        var entities = entityColumn >= 0 ? table.Columns[entityColumn] : null;
        var times = timeColumn >= 0 ? table.Columns[timeColumn] as DateTime?[] : null;
        var now = _services.Time.GetUtcNow().UtcDateTime;
        var oldestBucket = now - _options.BucketTtl;

        // Per seen-bitmap shard: its key and its events' (bit, entity, bucket); a batch rarely spans two. The order of
        // the shards does not matter: what the script counts is summed.
        var shards = new Dictionary<long, (int SeenKey, List<RedisValue> Events)>();
        var newest = new Dictionary<string, int>(StringComparer.Ordinal);
        var entityIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var entityArgs = new List<RedisValue>();
        var bucketKeys = new Dictionary<long, int>();
        for (var row = 0; row < table.Count; row++)
        {
            if (ids?[row] is not { } id || id < 0) { continue; }
            var entity = entities?.GetValue(row) is { } e ? Convert.ToString(e, CultureInfo.InvariantCulture)! : null;
            var time = times?[row];
            var shard = id >> SeenShardBits;
            if (!shards.TryGetValue(shard, out var group))
            {
                shards[shard] = group = (Key($"{p}events:seen:{shard}"), new List<RedisValue>(table.Count * 3));
            }

            var entityNumber = 0;
            if (entity is not null && !entityIndex.TryGetValue(entity, out entityNumber))
            {
                entityIndex[entity] = entityNumber = entityIndex.Count + 1;
                entityArgs.Add(Key($"{p}{_options.Entity}:count:{entity}"));
                entityArgs.Add(entity);
            }

            var bucket = 0;
            if (entity is not null && time is { } t && t >= oldestBucket)
            {
                var minute = t.Ticks / TimeSpan.TicksPerMinute;
                if (!bucketKeys.TryGetValue(minute, out bucket))
                {
                    bucketKeys[minute] = bucket = Key($"{p}{_options.TopPrefix}:bucket:{t.ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture)}");
                }
            }

            group.Events.Add(id & ((1L << SeenShardBits) - 1));
            group.Events.Add(entityNumber);
            group.Events.Add(bucket);
            if (entity is not null && time is not null)
            {
                if (!newest.TryGetValue(entity, out var best) || Newer(times![row]!.Value, id, times[best]!.Value, ids[best]!.Value))
                {
                    newest[entity] = row;
                }
            }
        }

        var lasts = new List<RedisValue>(newest.Count * 4);
        foreach (var (entity, row) in newest)
        {
            lasts.Add(Key($"{p}{_options.Entity}:last:{entity}"));
            lasts.Add(RowJson.Timestamp(times![row]!.Value));
            lasts.Add(ids![row]!.Value);
            lasts.Add(RowJson.ToUtf8(table, row));
        }

        var minutes = (int)_options.Window.TotalMinutes;
        var thisMinute = new DateTime(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, DateTimeKind.Utc);
        var window = Enumerable.Range(0, minutes)
            .Select(i => (RedisValue)Key($"{p}{_options.TopPrefix}:bucket:{thisMinute.AddMinutes(-i).ToString("yyyyMMddHHmm", CultureInfo.InvariantCulture)}")).ToList();
        var windowKey = Key(_options.WindowKey);

        var args = new List<RedisValue>(10 + entityArgs.Count + shards.Values.Sum(s => 2 + s.Events.Count) + lasts.Count + window.Count)
        {
            shards.Count, newest.Count, windowKey, (long)_options.WindowTtl.TotalSeconds, (long)_options.BucketTtl.TotalSeconds,
            (long)_options.LastTtl.TotalSeconds, window.Count, _options.TimeColumn, _options.EventIdColumn, entityIndex.Count,
        };
        args.AddRange(entityArgs);
        foreach (var (seenKey, events) in shards.Values)
        {
            args.Add(seenKey);
            args.Add(events.Count / 3);
            args.AddRange(events);
        }

        args.AddRange(lasts);
        args.AddRange(window);
        return (keys.ToArray(), args.ToArray());
    }

    private static bool Newer(DateTime time, long id, DateTime bestTime, long bestId) => time > bestTime || (time == bestTime && id > bestId);

    public ValueTask DisposeAsync() => _runner.DisposeAsync();
}

internal static partial class RedisLog
{
    [LoggerMessage(7001, LogLevel.Warning, "Redis write failed ({Reason}); attempt {Attempt}, retrying in {Delay} ms")]
    public static partial void Retrying(ILogger logger, string reason, int attempt, long delay);

    [LoggerMessage(7002, LogLevel.Information, "Redis write succeeded after {Attempts} attempts")]
    public static partial void Recovered(ILogger logger, int attempts);
}
