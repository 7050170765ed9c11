using Sluice.Core.Config;

namespace Sluice.Connectors.Redis;

/// <summary>What the generic <c>redis</c> sink writes per row's key.</summary>
public enum RedisSinkMode
{
    /// <summary>A string: the row as JSON, or one column's value (<c>value:</c>).</summary>
    Set,

    /// <summary>A hash of the row's columns (<c>columns:</c>, default every column not starting with '_'); the hash is replaced whole.</summary>
    Hash,

    /// <summary>An integer, increased by a column's value (<c>by:</c>) or by 1 per row.</summary>
    Counter,
}

/// <summary>Options of the generic <c>redis</c> sink, read from the pipeline's <c>sinks:</c> entry and validated at load.</summary>
public sealed class RedisSinkOptions : Core.Recipes.IConnectionCheck, Core.Pipeline.IChecksBatchShape
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly RedisSinkOptions Default = OptionDefaults.Of<RedisSinkOptions>();

    /// <summary>At load: the table reaches the sink with every column the key and the mode name (a row without one cannot be written).</summary>
    public void Check(Core.Pipeline.BatchShape input, Core.Pipeline.ShapeProblems problems)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(problems);
        if (input.Table(Table) is not { } table)
        {
            problems.Add("table", "redis sink", input.MissingTable(Table));
            return;
        }

        var named = Key.Columns.Select(c => ("key", c)).Concat(Columns.Select(c => ("columns", c)))
            .Concat(new[] { ("value", Value), ("by", By), ("position_column", PositionColumn) }.Where(o => o.Item2 is not null).Select(o => (o.Item1, o.Item2!)));
        foreach (var (key, column) in named) { problems.Add(key, "redis sink", table.Missing(column)); }
    }

    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => RedisPreflight.CheckAsync(Url, ct);

    /// <summary>The sink's name: its checkpoint key and dead-letter source.</summary>
    public string Name { get; init; } = "redis";

    /// <summary>Server URL.</summary>
    public required string Url { get; init; }

    /// <summary>The batch table read (required).</summary>
    public required string Table { get; init; }

    /// <summary><c>set</c> (default), <c>hash</c> or <c>counter</c>.</summary>
    public RedisSinkMode Mode { get; init; } = RedisSinkMode.Set;

    /// <summary>The key of a row, columns in braces (required): <c>user:{user_id}</c>.</summary>
    public required RedisKeyTemplate Key { get; init; }

    /// <summary><c>mode: set</c>: the column whose value is stored (default: the row as JSON).</summary>
    public string? Value { get; init; }

    /// <summary><c>mode: hash</c>: the columns stored as fields (default: every column not starting with '_').</summary>
    public IReadOnlyList<string> Columns { get; init; } = [];

    /// <summary><c>mode: counter</c>: the integer column added (default: 1 per row; a NULL adds nothing).</summary>
    public string? By { get; init; }

    /// <summary>Lifetime of a key after its last write.</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>
    /// The column holding each row's source position (the pair <c>_lsn</c>, <c>_seq</c> when the table has them, else <c>_offset</c>):
    /// a key remembers the highest position applied to it, and rows at or below it are not applied again, so a replay,
    /// however it is cut into batches, never counts twice nor puts back an older value.
    /// </summary>
    public string? PositionColumn { get; init; }

    /// <summary>First wait after a failed write, doubling up to <see cref="RetryMaxDelay"/>; retried until it succeeds or the pipeline stops.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest wait between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    public static RedisSinkOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var defaultMode = Default.Mode.ToString().ToLowerInvariant();
        var modeText = map.String("mode", defaultMode, doc: "`set`, `hash` or `counter`.") ?? defaultMode;
        var mode = modeText switch { "set" => RedisSinkMode.Set, "hash" => RedisSinkMode.Hash, "counter" => RedisSinkMode.Counter, _ => Default.Mode };
        if (modeText is not ("set" or "hash" or "counter"))
        {
            map.Error("mode", $"redis sink: '{modeText}' is not a mode (set: a string per key; hash: a hash of the row's columns; counter: INCRBY per row)" +
                (modeText == "mirror" ? "; Redis keeps no mirror of a change stream: use a lake, postgres or clickhouse sink with mode: mirror" : ""));
        }

        var keyText = EnvText.Expand(map.RequiredString("key", doc: "The key of a row, columns in braces (required): `user:{user_id}`."));
        var key = keyText.Length == 0 ? null : RedisKeyTemplate.Parse(keyText, out var keyError) ?? Fail(map, "key", $"redis sink: key \"{keyText}\": {keyError}");
        map.Declare("ttl", "duration", null, "Lifetime of a key after its last write, at least 1s (none: keys stay).");
        var ttl = map.Has("ttl") ? map.Duration("ttl", TimeSpan.Zero) : (TimeSpan?)null;
        var options = new RedisSinkOptions
        {
            Name = map.String("name", Default.Name, doc: "The sink's name: its checkpoint key and dead-letter source.") ?? Default.Name,
            Url = RedisUrl.Resolve(map),
            Table = map.RequiredString("table", doc: "The batch table read (required)."),
            Mode = mode,
            Key = key ?? RedisKeyTemplate.Parse("{_}", out _)!,
            Value = map.String("value", doc: "`mode: set`: the column whose value is stored."),
            Columns = map.StringList("columns", doc: "`mode: hash`: the columns stored as fields."),
            By = map.String("by", doc: "`mode: counter`: the integer column added."),
            Ttl = ttl,
            PositionColumn = map.String("position_column", doc: "The column holding each row's source position: a key remembers the highest position applied to it, and rows at or below it are not applied again, so a replay, however it is cut into batches, never counts twice nor puts back an older value."),
            RetryDelay = map.Duration("retry_delay", Default.RetryDelay, doc: "First wait after a failed write, doubling up to `retry_max_delay`; retried until it succeeds or the pipeline stops."),
            RetryMaxDelay = map.Duration("retry_max_delay", Default.RetryMaxDelay, doc: "Longest wait between two attempts."),
        };

        try { RedisUrl.Parse(options.Url); }
        catch (FormatException e) { map.Error("url", $"redis sink: {e.Message}"); }
        if (ttl is { } t && t < TimeSpan.FromSeconds(1)) { map.Error("ttl", "redis sink: must be at least 1s (leave it out for keys that stay)"); }
        if (options.RetryDelay <= TimeSpan.Zero) { map.Error("retry_delay", "redis sink: must be more than 0"); }
        foreach (var (option, only) in new[] { ("value", RedisSinkMode.Set), ("columns", RedisSinkMode.Hash), ("by", RedisSinkMode.Counter) })
        {
            if (map.Has(option) && mode != only) { map.Error(option, $"redis sink: {option} is for mode: {only.ToString().ToLowerInvariant()}, and this sink's mode is {mode.ToString().ToLowerInvariant()}; remove it"); }
        }

        return options;
    }

    private static RedisKeyTemplate? Fail(ConfigMap map, string key, string message)
    {
        map.Error(key, message);
        return null;
    }
}
