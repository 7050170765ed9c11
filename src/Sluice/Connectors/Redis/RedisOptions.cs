using StackExchange.Redis;
using Sluice.Core.Config;

namespace Sluice.Connectors.Redis;

/// <summary>
/// Where a Redis server is: a <c>redis://[user:password@]host:port[/db]</c> URL from the recipe (may be <c>${VAR}</c>),
/// else <c>$REDIS_URL</c>, else redis://127.0.0.1:6379.
/// </summary>
public static class RedisUrl
{
    /// <summary>The server when neither the recipe nor <c>REDIS_URL</c> names one.</summary>
    public const string Fallback = "redis://127.0.0.1:6379";

    /// <summary>A Redis sink's <c>url</c> key: the recipe's value, else <c>$REDIS_URL</c>, else <see cref="Fallback"/>.</summary>
    public static string Resolve(ConfigMap map) => EnvText.Resolve(map, "url", Fallback, "REDIS_URL", doc: "Server URL.");

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
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly RedisRealtimeOptions Default = OptionDefaults.Of<RedisRealtimeOptions>();

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
            Name = map.String("name", Default.Name, doc: "The sink's name: its checkpoint key.") ?? Default.Name,
            Url = RedisUrl.Resolve(map),
            KeyPrefix = EnvText.Expand(map.String("key_prefix", Default.KeyPrefix, doc: "Put before every key, so several pipelines or tests can share one server.") ?? Default.KeyPrefix),
            Table = map.String("table", Default.Table, doc: "The batch table read.") ?? Default.Table,
            Entity = map.String("entity", Default.Entity, doc: "Key name of the entity: `{entity}:last:{id}`, `{entity}:count:{id}`.") ?? Default.Entity,
            EntityColumn = map.String("entity_column", Default.EntityColumn, doc: "Column holding the entity id.") ?? Default.EntityColumn,
            EventIdColumn = map.String("event_id_column", Default.EventIdColumn, doc: "Column holding the event's unique integer id, used to count each event once.") ?? Default.EventIdColumn,
            TimeColumn = map.String("time_column", Default.TimeColumn, doc: "Column holding the event time.") ?? Default.TimeColumn,
            TopPrefix = map.String("top_prefix", Default.TopPrefix, doc: "Prefix of the per-minute and window ZSETs: `{top}:bucket:{YYYYMMDDHHMM}`, `{top}:10m`.") ?? Default.TopPrefix,
            LastTtl = map.Duration("last_ttl", Default.LastTtl, doc: "Lifetime of `{entity}:last:{id}`."),
            BucketTtl = map.Duration("bucket_ttl", Default.BucketTtl, doc: "Lifetime of a per-minute bucket; events older than this do not touch buckets."),
            Window = map.Duration("window", Default.Window, doc: "Span of the merged window."),
            WindowTtl = map.Duration("window_ttl", Default.WindowTtl, doc: "Lifetime of the merged window ZSET."),
            RetryDelay = map.Duration("retry_delay", Default.RetryDelay, doc: "First wait after a failed write, doubling up to `retry_max_delay`; retried until it succeeds or the pipeline stops."),
            RetryMaxDelay = map.Duration("retry_max_delay", Default.RetryMaxDelay, doc: "Longest wait between two attempts."),
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
