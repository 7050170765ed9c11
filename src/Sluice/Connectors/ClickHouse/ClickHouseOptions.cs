using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Connectors.ClickHouse;

/// <summary>Options of the <c>clickhouse</c> sink, read from the pipeline's <c>sinks:</c> entry and validated at load.</summary>
public sealed partial class ClickHouseOptions : Core.Recipes.IConnectionCheck, Core.Pipeline.IChecksBatchShape
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly ClickHouseOptions Default = OptionDefaults.Of<ClickHouseOptions>();

    /// <summary>At load: the table written reaches the sink with its sorting key's columns (a mirror takes the source's tables as they come).</summary>
    public void Check(Core.Pipeline.BatchShape input, Core.Pipeline.ShapeProblems problems)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(problems);
        if (Mirror) { return; }
        if (input.Table(Table) is not { } table)
        {
            problems.Add("table", "clickhouse sink", input.MissingTable(Table));
            return;
        }

        foreach (var column in OrderBy) { problems.Add("order_by", "clickhouse sink", table.Missing(column)); }
    }

    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => ClickHousePreflight.CheckAsync(Url, ct);

    /// <summary>The sink's name: its checkpoint key and dead-letter source.</summary>
    public string Name { get; init; } = "clickhouse";

    /// <summary>HTTP interface.</summary>
    public required Uri Url { get; init; }

    /// <summary>Database, created when missing.</summary>
    public string Database { get; init; } = "sluice";

    /// <summary>The batch table written, and the ClickHouse table of the same name (created when missing; any name, quoted).</summary>
    public required string Table { get; init; }

    /// <summary>Sorting key: these columns are stored non-nullable (NULL becomes 0, '' or 1970-01-01 00:00:00).</summary>
    public required IReadOnlyList<string> OrderBy { get; init; }

    /// <summary>
    /// Version column of the ReplacingMergeTree: rows with the same sorting key collapse to the
    /// highest version, so a replayed batch is invisible to queries that read with <c>FINAL</c>.
    /// </summary>
    public string Version { get; init; } = "_lsn";

    /// <summary>
    /// <c>changes</c> (default): every row as it comes. <c>mirror</c>: the table holds the current state of a
    /// change-data-capture source's table, sorted by its primary key, with a <c>_deleted</c> flag (docs/CDC.md, "Mirrors").
    /// </summary>
    public bool Mirror { get; init; }

    /// <summary>Optional partition expression, e.g. <c>toYYYYMM(event_ts)</c>.</summary>
    public string? PartitionBy { get; init; }

    /// <summary>Timeout of one HTTP request.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait after a failed write; it doubles per failure up to <see cref="RetryMaxDelay"/>. Writes are retried until they succeed or the pipeline stops.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest wait between two attempts.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The retry of every request: unbounded, the pipeline's queue bounds what waits.</summary>
    public Core.Resilience.RetryOptions Retry => new(RetryDelay, RetryMaxDelay);

    /// <summary>
    /// How long a batch may wait for the next ones before the insert. Every insert makes a part that
    /// ClickHouse must write and later merge, so a few large inserts cost it far less than many small ones.
    /// </summary>
    public TimeSpan InsertLinger { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Rows an insert gathers at most, from the batches waiting.</summary>
    public int InsertMaxRows { get; init; } = 100_000;

    /// <summary>
    /// A mirror's prune: at most this often, the keys whose newest row is a delete's (or truncate's) flag below the
    /// source's low-water mark, which nothing can bring back any more, are removed with one <c>ALTER TABLE ... DELETE</c>
    /// mutation (it rewrites parts in the background). 0 never.
    /// </summary>
    public TimeSpan PruneEvery { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The server when neither <c>url</c> nor <c>CLICKHOUSE_URL</c> names one.</summary>
    private const string DefaultUrl = "http://127.0.0.1:8123";

    public static ClickHouseOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var url = EnvText.Resolve(map, "url", DefaultUrl, "CLICKHOUSE_URL", doc: "HTTP interface.");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            map.Error("url", $"clickhouse: not an http(s) URL: '{url}'");
            uri = new Uri(DefaultUrl);
        }

        var mode = map.String("mode", "changes", doc: "`changes` (rows appended) or `mirror` (a ReplacingMergeTree per source table, keyed by its primary key and versioned by `_lsn`, read with FINAL).");
        var mirror = mode == "mirror";
        if (mode is not ("changes" or "mirror")) { map.Error("mode", $"clickhouse: '{mode}' is not a mode (changes: every row as it comes; mirror: the current state of a postgres_cdc source's table)"); }
        if (mirror)
        {
            // A mirror's rows of one key must meet in one part for FINAL: the key is the source's, the version the change's.
            if (map.Has("order_by")) { map.Error("order_by", "clickhouse: not used with mode: mirror (a mirror is sorted by the source table's primary key); remove it"); }
            if (map.Has("version")) { map.Error("version", "clickhouse: not used with mode: mirror (the version is _lsn, the change's commit position); remove it"); }
            if (map.Has("partition_by")) { map.Error("partition_by", "clickhouse: not used with mode: mirror (FINAL collapses a key's rows only within one partition); remove it"); }
        }

        var options = new ClickHouseOptions
        {
            Mirror = mirror,
            Name = map.String("name", Default.Name, doc: "The sink's name: its checkpoint key and dead-letter source.") ?? Default.Name,
            Url = uri,
            Database = EnvText.Expand(map.String("database", Default.Database, doc: "Database, created when missing.") ?? Default.Database),
            Table = map.RequiredString("table", doc: "The batch table written, and the ClickHouse table of the same name (created when missing; any name, quoted)."),
            OrderBy = map.StringList("order_by", doc: "Sorting key: these columns are stored non-nullable (NULL becomes 0, '' or 1970-01-01 00:00:00)."),
            Version = map.String("version", Default.Version, doc: "Version column of the ReplacingMergeTree: rows with the same sorting key collapse to the highest version, so a replayed batch is invisible to queries that read with `FINAL`.") ?? Default.Version,
            PartitionBy = map.String("partition_by", doc: "Optional partition expression, e.g. `toYYYYMM(event_ts)`."),
            Timeout = map.Duration("timeout", Default.Timeout, doc: "Timeout of one HTTP request."),
            RetryDelay = map.Duration("retry_delay", Default.RetryDelay, doc: "First wait after a failed write; it doubles per failure up to `retry_max_delay`. Writes are retried until they succeed or the pipeline stops."),
            RetryMaxDelay = map.Duration("retry_max_delay", Default.RetryMaxDelay, doc: "Longest wait between two attempts."),
            InsertLinger = map.Duration("insert_linger", Default.InsertLinger, doc: "How long a batch may wait for the next ones before the insert. Every insert makes a part that ClickHouse must write and later merge, so a few large inserts cost it far less than many small ones."),
            InsertMaxRows = map.Int("insert_max_rows", Default.InsertMaxRows, min: 1, doc: "Rows an insert gathers at most, from the batches waiting."),
            PruneEvery = map.Duration("prune_every", Default.PruneEvery, doc: "With `mode: mirror`: at most this often, the keys whose newest row is a delete's (or truncate's) flag below the source's low-water mark, which nothing can bring back any more, are removed with one `ALTER TABLE ... DELETE` mutation (it rewrites parts in the background). `0s` never."),
        };

        if (options.OrderBy.Count == 0 && !mirror) { map.Error("order_by", "clickhouse: missing required field (the sorting key columns, e.g. [event_ts, content_id, event_id])"); }
        // The table is the batch table's name, which may be a Postgres table's exact name ("MixedCase", "Quoted . Table",
        // "sales.orders"): any text, quoted wherever it is used.
        if (options.Table.Any(char.IsControl)) { map.Error("table", "clickhouse: a table name without control characters"); }
        foreach (var (key, value) in new[] { ("database", options.Database), ("version", options.Version) }.Concat(options.OrderBy.Select(o => ("order_by", o))))
        {
            if (value.Length > 0 && !PlainName().IsMatch(value)) { map.Error(key, $"clickhouse: '{value}' is not a plain name (letters, digits, '_')"); }
        }

        if (!mirror && map.Has("prune_every")) { map.Error("prune_every", "clickhouse: used with mode: mirror only (a change log keeps every row); remove it"); }
        if (options.Timeout <= TimeSpan.Zero) { map.Error("timeout", "clickhouse: must be more than 0"); }
        if (options.InsertLinger < TimeSpan.Zero || options.InsertLinger > TimeSpan.FromSeconds(1))
        {
            map.Error("insert_linger", $"clickhouse: must be between 0 and 1s (rows must reach ClickHouse within a second), got {options.InsertLinger.TotalMilliseconds:0}ms");
        }
        return options;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex PlainName();
}
