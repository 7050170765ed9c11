namespace Sluice.Core.Logging;

/// <summary>
/// The catalogue of <c>[LoggerMessage]</c> event ids. Every id belongs to one area, and the area of a message is the
/// one whose namespace prefix is the longest match for the namespace of the class that declares it. A new message
/// takes the next free id of its area's <see cref="LogArea.Open"/> range (docs/ARCHITECTURE.md, "Logging");
/// <see cref="LogArea.Shipped"/> lists the ids given before the catalogue existed: operators may alert on them, so
/// they keep their numbers, and nothing new goes there. <c>LogEventIdTests</c> fails on an id used twice or outside
/// its area, naming both methods and the range to pick from.
/// </summary>
public static class LogEventRanges
{
    public static readonly IReadOnlyList<LogArea> Areas =
    [
        // The engine's bottom layer: stream pipeline, metadata store, dead letters, status, I/O (disk full).
        new("core", ["Sluice.Core"], new(20000, 20999), [new(9600, 9603)]),
        // Running a recipe: pipelines, schedules, stop, operator requests, the watched recipe file.
        new("hosting", ["Sluice.Hosting"], new(21000, 21999),
            [new(3001, 3006), new(9101, 9103), new(9203, 9203), new(9300, 9300), new(10001, 10001), new(11301, 11302), new(11702, 11702)]),
        // Job runner, cron scheduler and the generic job types.
        new("jobs", ["Sluice.Jobs"], new(22000, 22999), [new(2001, 2004)]),
        // SQL models and warehouses.
        new("models", ["Sluice.Models"], new(23000, 23999), [new(11600, 11601), new(11700, 11701)]),
        // The embedded Parquet lake and its sink.
        new("lake", ["Sluice.Lake", "Sluice.Connectors.Lake"], new(24000, 24999), [new(5301, 5302), new(10200, 10200)]),
        // The files source (drop folders, file types).
        new("files", ["Sluice.Connectors.Files"], new(25000, 25999), [new(1001, 1007), new(9501, 9501)]),
        // The http source: push endpoint, landing log, dedup.
        new("http-ingest", ["Sluice.Connectors.Http.Ingest"], new(26000, 26999),
            [new(5101, 5101), new(5201, 5201), new(9200, 9202), new(9204, 9204), new(9604, 9604)]),
        // PostgreSQL: CDC, pull, sink, snapshots.
        new("postgres", ["Sluice.Connectors.Postgres"], new(27000, 27999),
            [new(5001, 5010), new(5401, 5401), new(9800, 9801), new(9900, 9904), new(10000, 10000), new(10300, 10304)]),
        new("clickhouse", ["Sluice.Connectors.ClickHouse"], new(28000, 28999), [new(6001, 6004)]),
        new("redis", ["Sluice.Connectors.Redis"], new(29000, 29999), [new(7001, 7002)]),
        // Outbound HTTP: the API sink and the shared retry of webhooks.
        new("http", ["Sluice.Connectors.Http"], new(30000, 30999), [new(8001, 8002)]),
        new("salesforce", ["Sluice.Connectors.Salesforce"], new(31000, 31999), []),
        new("smtp", ["Sluice.Connectors.Smtp"], new(32000, 32999), []),
        new("openlineage", ["Sluice.Connectors.OpenLineage"], new(33000, 33999), [new(10800, 10804)]),
        new("opentelemetry", ["Sluice.Connectors.OpenTelemetry"], new(34000, 34999), []),
        // The repeat-reminder recipe: store, pull sources, the send_reminders job.
        new("reminders", ["Sluice.Recipes.Reminders"], new(35000, 35999), [new(6101, 6102), new(9950, 9950)]),
        new("alerts", ["Sluice.Alerts"], new(36000, 36999), [new(11400, 11407)]),
        // The HTTP server, console, auth, management and metrics routes.
        new("serving", ["Sluice.Serving"], new(37000, 37999), [new(11200, 11203)]),
        // Steps that change records: mapping, the generic steps, engagement-cdc's enrichment.
        new("steps", ["Sluice.Transforms", "Sluice.Mapping", "Sluice.Recipes.Engagement"], new(38000, 38999), []),
        new("cli", ["Sluice.Cli"], new(39000, 39999), []),
        // What feeds demos and benchmarks: generators, demo drivers, the mock API and SMTP catcher.
        new("demo", ["Sluice.Recipes.Demo", "Sluice.Recipes.Generators", "Sluice.Recipes.TestServers"], new(40000, 40999), []),
        new("bench", ["Sluice.Bench"], new(41000, 41999), []),
        // Generic incremental pulls (postgres_pull, salesforce) as stream sources.
        new("pull", ["Sluice.Connectors.Pull"], new(42000, 42999), []),
        // NATS JetStream: the cluster's log (http ingest publishes to it, pipelines consume from it).
        new("nats", ["Sluice.Connectors.Nats"], new(43000, 43999), []),
        // Cluster mode: its settings and what a recipe may run in it.
        new("cluster", ["Sluice.Cluster"], new(44000, 44999), []),
        // A new area takes the next free thousand from 45000.
    ];

    /// <summary>The area of a type in <paramref name="namespace"/>: the longest namespace prefix that matches at a dot; null when none does.</summary>
    public static LogArea? AreaOf(string? @namespace)
    {
        if (@namespace is null) { return null; }
        LogArea? best = null;
        var bestLength = -1;
        foreach (var area in Areas)
        {
            foreach (var prefix in area.Namespaces)
            {
                var matches = @namespace == prefix || @namespace.StartsWith(prefix + ".", StringComparison.Ordinal);
                if (matches && prefix.Length > bestLength)
                {
                    best = area;
                    bestLength = prefix.Length;
                }
            }
        }

        return best;
    }
}

/// <summary>An area of the log catalogue: the namespaces it covers, the range new ids come from, and the ids it shipped before the catalogue.</summary>
public sealed record LogArea(string Name, IReadOnlyList<string> Namespaces, LogIdRange Open, IReadOnlyList<LogIdRange> Shipped)
{
    public bool Holds(int id) => Open.Holds(id) || Shipped.Any(r => r.Holds(id));

    public IEnumerable<LogIdRange> Ranges => Shipped.Prepend(Open);

    public override string ToString() =>
        $"area '{Name}' ({string.Join(", ", Namespaces)}): new ids {Open}" + (Shipped.Count > 0 ? $", shipped {string.Join(", ", Shipped)}" : "");
}

/// <summary>Event ids <see cref="First"/> to <see cref="Last"/>, both included.</summary>
public readonly record struct LogIdRange(int First, int Last)
{
    public bool Holds(int id) => id >= First && id <= Last;

    public bool Overlaps(LogIdRange other) => First <= other.Last && other.First <= Last;

    public override string ToString() => First == Last ? $"{First}" : $"{First}-{Last}";
}
