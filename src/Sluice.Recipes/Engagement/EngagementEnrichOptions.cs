using System.Text.RegularExpressions;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Transforms.Lookup;

namespace Sluice.Recipes.Engagement;

/// <summary>Options of the <c>engagement_enrich</c> step, read from the pipeline's <c>steps:</c> entry and validated at load.</summary>
public sealed partial class EngagementEnrichOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly EngagementEnrichOptions Default = OptionDefaults.Of<EngagementEnrichOptions>();

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
        var fields = map.StringList("fields", doc: "Dimension columns copied onto each fact row.", fallback: Default.Fields);
        var options = new EngagementEnrichOptions
        {
            Connection = PostgresConnectionOptions.Parse(map, "engagement_enrich"),
            Schema = map.String("schema", Default.Schema, doc: "Schema of the dimension table.") ?? Default.Schema,
            Facts = map.String("facts", Default.Facts, doc: "The fact table whose rows are enriched.") ?? Default.Facts,
            Dimension = map.String("dimension", Default.Dimension, doc: "The dimension table: loaded once, then kept current by its rows in the same stream.") ?? Default.Dimension,
            Key = map.String("key", Default.Key, doc: "The join key, a column of both tables.") ?? Default.Key,
            Fields = fields,
            Output = map.String("output", Default.Output, doc: "Name of the enriched table handed to the sinks.") ?? Default.Output,
            Duration = map.String("duration", Default.Duration, doc: "Fact column holding the watched duration in milliseconds.") ?? Default.Duration,
            Length = map.String("length", Default.Length, doc: "Dimension column holding the content length in seconds.") ?? Default.Length,
            MaxRows = map.Int("max_rows", Default.MaxRows, min: 1, max: 50_000_000, doc: "Dimension rows kept in memory at most (the cache bound; the least recently used leave first)."),
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
