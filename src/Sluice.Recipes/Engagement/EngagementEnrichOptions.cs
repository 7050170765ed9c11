using System.Text.RegularExpressions;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Transforms.Lookup;

namespace Sluice.Recipes.Engagement;

/// <summary>Options of the <c>engagement_enrich</c> step, read from the pipeline's <c>steps:</c> entry and validated at load.</summary>
public sealed partial class EngagementEnrichOptions
{
    /// <summary>Where the dimension table is loaded from at start (the <c>connection:</c> block, else <c>PG*</c> variables).</summary>
    public required PostgresConnectionOptions Connection { get; init; }

    /// <summary>Schema of the dimension table.</summary>
    public string Schema { get; init; } = "public";

    /// <summary>The fact table whose rows are enriched.</summary>
    public string Facts { get; init; } = "engagement_events";

    /// <summary>The dimension table: loaded once, then kept current by its rows in the same stream.</summary>
    public string Dimension { get; init; } = "content";

    /// <summary>The join key, a column of both tables.</summary>
    public string Key { get; init; } = "content_id";

    /// <summary>Dimension columns copied onto each fact row.</summary>
    public IReadOnlyList<string> Fields { get; init; } = ["content_type", "length_seconds"];

    /// <summary>Name of the enriched table handed to the sinks.</summary>
    public string Output { get; init; } = "events_enriched";

    /// <summary>Fact column holding the watched duration in milliseconds.</summary>
    public string Duration { get; init; } = "duration_ms";

    /// <summary>Dimension column holding the content length in seconds.</summary>
    public string Length { get; init; } = "length_seconds";

    /// <summary>Dimension rows kept in memory at most (the cache bound).</summary>
    public int MaxRows { get; init; } = 1_000_000;

    /// <summary>
    /// The dimension as the generic <c>lookup</c> step's machinery reads and caches it (<see cref="LookupCache"/>,
    /// <see cref="LookupTable"/>): loaded at start, kept current by its rows in the stream (TOAST-safe), an unknown
    /// key keeping NULL fields.
    /// </summary>
    public LookupOptions Lookup() => new()
    {
        Tables = new Transforms.TableSelection([Facts]),
        Key = Key,
        Dimension = Dimension,
        DimensionKey = Key,
        Schema = Schema,
        Connection = Connection,
        Fields = Fields,
        MaxRows = MaxRows,
        OnMiss = LookupMiss.Keep,
        LetterSource = "engagement_enrich",
    };

    public static EngagementEnrichOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var fields = map.StringList("fields", doc: "Dimension columns copied onto each fact row.", fallback: ["content_type", "length_seconds"]);
        var options = new EngagementEnrichOptions
        {
            Connection = PostgresConnectionOptions.Parse(map, "engagement_enrich"),
            Schema = map.String("schema", "public", doc: "Schema of the dimension table.") ?? "public",
            Facts = map.String("facts", "engagement_events", doc: "The fact table whose rows are enriched.") ?? "engagement_events",
            Dimension = map.String("dimension", "content", doc: "The dimension table: loaded once, then kept current by its rows in the same stream.") ?? "content",
            Key = map.String("key", "content_id", doc: "The join key, a column of both tables.") ?? "content_id",
            Fields = fields,
            Output = map.String("output", "events_enriched", doc: "Name of the enriched table handed to the sinks.") ?? "events_enriched",
            Duration = map.String("duration", "duration_ms", doc: "Fact column holding the watched duration in milliseconds.") ?? "duration_ms",
            Length = map.String("length", "length_seconds", doc: "Dimension column holding the content length in seconds.") ?? "length_seconds",
            MaxRows = map.Int("max_rows", 1_000_000, min: 1, max: 50_000_000, doc: "Dimension rows kept in memory at most (the cache bound; the least recently used leave first)."),
        };

        foreach (var (key, value) in new[] { ("schema", options.Schema), ("facts", options.Facts), ("dimension", options.Dimension), ("key", options.Key), ("output", options.Output), ("duration", options.Duration), ("length", options.Length) }
            .Concat(fields.Select(f => ("fields", f))))
        {
            if (!Name().IsMatch(value)) { map.Error(key, $"engagement_enrich: '{value}' is not a plain name (letters, digits, '_')"); }
        }

        if (!fields.Contains(options.Length, StringComparer.Ordinal))
        {
            map.Error("fields", $"engagement_enrich: fields must include the length column '{options.Length}' (engagement_pct is computed from it)");
        }

        return options;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]*$")]
    private static partial Regex Name();
}
