using StackExchange.Redis;
using Sluice.Core.Config;

namespace Sluice.Connectors.Redis;

/// <summary>
/// Where a Redis server is: a <c>redis://[user:password@]host:port[/db]</c> URL from the recipe (may be <c>${VAR}</c>),
/// else <c>$REDIS_URL</c>, else redis://127.0.0.1:6379.
/// </summary>
public static class RedisUrl
{
    public static ConfigurationOptions Parse(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "redis" && uri.Scheme != "rediss"))
        {
            throw new FormatException($"not a redis:// URL: '{url}'");
        }

        var options = new ConfigurationOptions
        {
            EndPoints = { { uri.Host, uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port } },
            Ssl = uri.Scheme == "rediss",
            // Keep trying in the background: a server that is down at start or restarts later is waited for, not fatal.
            AbortOnConnectFail = false,
            ConnectTimeout = 5000,
            SyncTimeout = 10000,
            AsyncTimeout = 10000,
            ConnectRetry = 3,
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = Uri.UnescapeDataString(uri.UserInfo).Split(':', 2);
            if (parts.Length == 2) { options.User = parts[0].Length > 0 ? parts[0] : null; options.Password = parts[1]; }
            else { options.Password = parts[0]; }
        }

        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0 && int.TryParse(path, out var db)) { options.DefaultDatabase = db; }
        return options;
    }
}

/// <summary>Options of the <c>redis_realtime</c> sink, read from the pipeline's <c>sinks:</c> entry and validated at load.</summary>
public sealed class RedisRealtimeOptions : Core.Recipes.IConnectionCheck
{
    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => RedisPreflight.CheckAsync(Url, ct);

    /// <summary>The sink's name: its checkpoint key.</summary>
    public string Name { get; init; } = "redis";

    /// <summary>Server URL.</summary>
    public required string Url { get; init; }

    /// <summary>Put before every key, so several pipelines or tests can share one server.</summary>
    public string KeyPrefix { get; init; } = "";

    /// <summary>The batch table read.</summary>
    public string Table { get; init; } = "events_enriched";

    /// <summary>Key name of the entity: <c>{entity}:last:{id}</c>, <c>{entity}:count:{id}</c>.</summary>
    public string Entity { get; init; } = "content";

    /// <summary>Column holding the entity id.</summary>
    public string EntityColumn { get; init; } = "content_id";

    /// <summary>Column holding the event's unique integer id, used to count each event once.</summary>
    public string EventIdColumn { get; init; } = "event_id";

    /// <summary>Column holding the event time.</summary>
    public string TimeColumn { get; init; } = "event_ts";

    /// <summary>Prefix of the per-minute and window ZSETs: <c>{top}:bucket:{YYYYMMDDHHMM}</c>, <c>{top}:10m</c>.</summary>
    public string TopPrefix { get; init; } = "top:content";

    /// <summary>Lifetime of <c>{entity}:last:{id}</c>.</summary>
    public TimeSpan LastTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Lifetime of a per-minute bucket; events older than this do not touch buckets.</summary>
    public TimeSpan BucketTtl { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Span of the merged window.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Lifetime of the merged window ZSET.</summary>
    public TimeSpan WindowTtl { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>First wait after a failed write, doubling up to <see cref="RetryMaxDelay"/>; retried until it succeeds or the pipeline stops.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest wait between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The retry of every write: unbounded, the pipeline's queue bounds what waits.</summary>
    public Core.Resilience.RetryOptions Retry => new(RetryDelay, RetryMaxDelay);

    public string WindowKey => $"{KeyPrefix}{TopPrefix}:{(int)Window.TotalMinutes}m";

    public static RedisRealtimeOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var options = new RedisRealtimeOptions
        {
            Name = map.String("name", "redis", doc: "The sink's name: its checkpoint key.") ?? "redis",
            Url = EnvText.Resolve(map, "url", "redis://127.0.0.1:6379", "REDIS_URL", doc: "Server URL."),
            KeyPrefix = EnvText.Expand(map.String("key_prefix", "", doc: "Put before every key, so several pipelines or tests can share one server.") ?? ""),
            Table = map.String("table", "events_enriched", doc: "The batch table read.") ?? "events_enriched",
            Entity = map.String("entity", "content", doc: "Key name of the entity: `{entity}:last:{id}`, `{entity}:count:{id}`.") ?? "content",
            EntityColumn = map.String("entity_column", "content_id", doc: "Column holding the entity id.") ?? "content_id",
            EventIdColumn = map.String("event_id_column", "event_id", doc: "Column holding the event's unique integer id, used to count each event once.") ?? "event_id",
            TimeColumn = map.String("time_column", "event_ts", doc: "Column holding the event time.") ?? "event_ts",
            TopPrefix = map.String("top_prefix", "top:content", doc: "Prefix of the per-minute and window ZSETs: `{top}:bucket:{YYYYMMDDHHMM}`, `{top}:10m`.") ?? "top:content",
            LastTtl = map.Duration("last_ttl", TimeSpan.FromHours(1), doc: "Lifetime of `{entity}:last:{id}`."),
            BucketTtl = map.Duration("bucket_ttl", TimeSpan.FromMinutes(15), doc: "Lifetime of a per-minute bucket; events older than this do not touch buckets."),
            Window = map.Duration("window", TimeSpan.FromMinutes(10), doc: "Span of the merged window."),
            WindowTtl = map.Duration("window_ttl", TimeSpan.FromSeconds(120), doc: "Lifetime of the merged window ZSET."),
            RetryDelay = map.Duration("retry_delay", TimeSpan.FromMilliseconds(200), doc: "First wait after a failed write, doubling up to `retry_max_delay`; retried until it succeeds or the pipeline stops."),
            RetryMaxDelay = map.Duration("retry_max_delay", TimeSpan.FromSeconds(5), doc: "Longest wait between two attempts."),
        };

        try { RedisUrl.Parse(options.Url); }
        catch (FormatException e) { map.Error("url", $"redis_realtime: {e.Message}"); }
        if (options.Window < TimeSpan.FromMinutes(1) || options.Window.TotalMinutes % 1 != 0) { map.Error("window", "redis_realtime: must be whole minutes, at least 1m"); }
        foreach (var (key, value) in new[] { ("last_ttl", options.LastTtl), ("bucket_ttl", options.BucketTtl), ("window_ttl", options.WindowTtl) })
        {
            if (value < TimeSpan.FromSeconds(1)) { map.Error(key, "redis_realtime: must be at least 1s"); }
        }

        return options;
    }
}
