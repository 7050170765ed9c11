using System.Globalization;
using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// Options of the <c>http</c> source: one stream of events pushed over HTTP (<c>POST /v1/streams/{stream}/events</c>),
/// its schemas per <c>schema_version</c>, its dedup key and tenant field, and the bounds that keep memory and disk in
/// check. Read from the recipe's <c>source:</c> block and validated at load.
/// </summary>
public sealed partial class HttpIngestOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly HttpIngestOptions Default = new();

    /// <summary>The stream's name in the URL (required; letters, digits, '_' and '-').</summary>
    public string Stream { get; init; } = "";

    /// <summary>The table the flattened events go to (default: the stream's name); child arrays go to their own tables.</summary>
    public string Table { get; init; } = "";

    /// <summary>The schema of each accepted <c>schema_version</c> (YAML files relative to the recipe, key <c>schemas</c>).</summary>
    public IReadOnlyList<EventSchemaVersion> Versions { get; init; } = [];

    /// <summary>The top-level integer field naming an event's schema version.</summary>
    public string VersionField { get; init; } = "schema_version";

    /// <summary>The top-level field holding the tenant. Its value always comes from the token; an event naming another tenant refuses the whole request.</summary>
    public string TenantField { get; init; } = "tenant_id";

    /// <summary>The timestamp field that dates an event (required; it partitions the lake tables).</summary>
    public string TimeField { get; init; } = "";

    /// <summary>
    /// A text column that carries each event's JSON exactly as received, next to the flattened fields.
    /// For streams whose events a later step maps itself (the <c>attorney_events</c> step of repeat-reminder): the
    /// schema then only declares what ingest must check (the dedup key, the time field).
    /// </summary>
    public string? JsonColumn { get; init; }

    /// <summary>The text field identifying an event for deduplication. Duplicates within the window are accepted and land once.</summary>
    public string? DedupKey { get; init; }

    /// <summary>How long a dedup key is remembered.</summary>
    public TimeSpan DedupWindow { get; init; } = TimeSpan.FromHours(24);

    /// <summary>At most this many keys are remembered; past it the oldest hour of keys is forgotten first.</summary>
    public int DedupMaxKeys { get; init; } = 5_000_000;

    /// <summary>Largest request body; larger requests get 413.</summary>
    public long MaxRequestBytes { get; init; } = 32L << 20;

    /// <summary>Largest single event; a larger one is rejected on its own, inside the 202.</summary>
    public long MaxEventBytes { get; init; } = 1L << 20;

    /// <summary>Most events in one request; more gets 413.</summary>
    public int MaxEventsPerRequest { get; init; } = 100_000;

    /// <summary>Bytes accepted but not yet written and fsynced: the stream's in-memory queue. Full means 429 with Retry-After.</summary>
    public long QueueBytes { get; init; } = 64L << 20;

    /// <summary>Request bodies held in memory at once across the stream; past it requests get 429 with Retry-After.</summary>
    public long InflightBytes { get; init; } = 256L << 20;

    /// <summary>
    /// The fraction of <see cref="InflightBytes"/> one tenant may hold (default 0.25, so 64 MB of 256 MB: two of the
    /// largest requests); past it that tenant's requests get 429 while the others' still pass. A tenant holding nothing
    /// may always send one request.
    /// </summary>
    public double TenantInflightShare { get; init; } = DefaultTenantInflightShare;

    /// <summary>
    /// Slowest request body accepted, in bytes per second averaged since the body started; a slower
    /// body is cut (408) after <see cref="BodyRateGrace"/>, so a trickling client cannot hold its share of
    /// <see cref="InflightBytes"/> for long. Kestrel's own default (240 B/s) lets a 400 B/s trickle through.
    /// </summary>
    public long MinBodyRate { get; init; } = Serving.SluiceHttpServer.DefaultMinBodyRate;

    /// <summary>How long a body may start slower than <see cref="MinBodyRate"/> before the rate counts.</summary>
    public TimeSpan BodyRateGrace { get; init; } = Serving.SluiceHttpServer.DefaultBodyRateGrace;

    public const double DefaultTenantInflightShare = 0.25;

    /// <summary>Landing-log bytes not yet committed by every sink; past it requests get 503 with Retry-After until the sinks catch up.</summary>
    public long MaxBacklogBytes { get; init; } = 2L << 30;

    /// <summary>Size at which the landing log starts a new segment file; whole segments are deleted once every sink has them.</summary>
    public long SegmentBytes { get; init; } = 64L << 20;

    /// <summary>How long the pipeline gathers landed events before handing a batch to the sinks: fewer, larger lake commits at the cost of that much freshness.</summary>
    public TimeSpan BatchLinger { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Most events in one pipeline batch.</summary>
    public int BatchMaxEvents { get; init; } = 50_000;

    /// <summary>The metrics query API over the lake, when the recipe serves one (<c>GET /v1/metrics</c>).</summary>
    public MetricsApiOptions? Metrics { get; init; }

    public string DeadLetterSource(string recipe) => $"http:{recipe}/{Stream}";

    public static HttpIngestOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        var stream = map.RequiredString("stream", doc: "The stream's name in the URL (required; letters, digits, '_' and '-').");
        if (stream.Length > 0 && !StreamNameRegex().IsMatch(stream))
        {
            map.Error("stream", $"'{stream}' must be letters, digits, '_' or '-' (it is part of the URL and of folder names)");
        }

        var table = map.String("table", stream.Replace('-', '_'), doc: "The lake table as `zone.name` (required).") ?? stream;
        if (table.Length > 0 && !IdentifierRegex().IsMatch(table)) { map.Error("table", $"'{table}' must be letters, digits and '_'"); }
        var versions = new List<EventSchemaVersion>();
        var schemas = map.Map("schemas", required: true, doc: "Schema version to schema file, relative to the recipe (`schemas: {1: schemas/x.v1.yaml}`): the fields of each version of the events.");
        if (schemas is not null)
        {
            foreach (var key in schemas.Keys.ToList())
            {
                var file = schemas.String(key) ?? "";
                if (!int.TryParse(key, NumberStyles.Integer, CultureInfo.InvariantCulture, out var version) || version < 0)
                {
                    schemas.Error(key, $"a schema version is a whole number (schemas: {{1: schemas/x.v1.yaml}}), got '{key}'");
                    continue;
                }

                var path = Path.Combine(recipe.Folder, file);
                if (!File.Exists(path))
                {
                    schemas.Error(key, $"schema file '{file}' not found in {recipe.Folder}");
                    continue;
                }

                var parsed = EventSchemaParser.ParseFile(path, version, table, recipe.Errors);
                if (parsed is not null) { versions.Add(parsed); }
            }

            schemas.Done();
            if (schemas.Keys.Any() is false) { map.Error("schemas", "name at least one schema version"); }
        }

        var dedup = map.Map("dedup", doc: "Drop repeats of an event by a key field, within a window.");
        string? dedupKey = null;
        var window = Default.DedupWindow;
        var maxKeys = Default.DedupMaxKeys;
        if (dedup is not null)
        {
            dedupKey = dedup.RequiredString("key", doc: "The event field whose value makes an event a repeat.");
            window = dedup.Duration("window", window, doc: "How long a key is remembered.");
            maxKeys = dedup.Int("max_keys", maxKeys, 1_000, 200_000_000, doc: "Keys remembered at most (the memory bound).");
            dedup.Done();
        }

        var options = new HttpIngestOptions
        {
            Stream = stream,
            Table = table,
            Versions = versions.OrderBy(v => v.Version).ToList(),
            VersionField = map.String("version_field", Default.VersionField, doc: "The top-level integer field naming an event's schema version.") ?? Default.VersionField,
            TenantField = map.String("tenant_field", Default.TenantField, doc: "The top-level field holding the tenant. Its value always comes from the token; an event naming another tenant refuses the whole request.") ?? Default.TenantField,
            TimeField = map.RequiredString("time_field", doc: "The timestamp field that dates an event (required; it partitions the lake tables)."),
            DedupKey = dedupKey,
            DedupWindow = window,
            DedupMaxKeys = maxKeys,
            MaxRequestBytes = map.Size("max_request_bytes", Default.MaxRequestBytes, 1024, 1L << 30, doc: "Largest request body; larger requests get 413."),
            MaxEventBytes = map.Size("max_event_bytes", Default.MaxEventBytes, 64, 64L << 20, doc: "Largest single event; a larger one is rejected on its own, inside the 202."),
            MaxEventsPerRequest = map.Int("max_events_per_request", Default.MaxEventsPerRequest, 1, 10_000_000, doc: "Most events in one request; more gets 413."),
            QueueBytes = map.Size("queue_bytes", Default.QueueBytes, 64L << 10, 8L << 30, doc: "Bytes accepted but not yet written and fsynced: the stream's in-memory queue. Full means 429 with Retry-After."),
            InflightBytes = map.Size("inflight_bytes", Default.InflightBytes, 1L << 20, 16L << 30, doc: "Request bodies held in memory at once across the stream; past it requests get 429 with Retry-After."),
            TenantInflightShare = map.Double("tenant_inflight_share", Default.TenantInflightShare, 0.01, 1, doc: "The fraction of `inflight_bytes` one tenant may hold; past it that tenant's requests get 429 while the others' still pass. A tenant holding nothing may always send one request."),
            MinBodyRate = map.Size("min_body_rate", Default.MinBodyRate, 0, 1L << 30, doc: "Slowest request body accepted, in bytes per second averaged since the body started; a slower body is cut (408) after `body_rate_grace`, so a trickling client cannot hold its share of `inflight_bytes` for long. Kestrel's own default (240 B/s) lets a 400 B/s trickle through."),
            BodyRateGrace = map.Duration("body_rate_grace", Default.BodyRateGrace, doc: "How long a body may start slower than `min_body_rate` before the rate counts."),
            MaxBacklogBytes = map.Size("max_backlog_bytes", Default.MaxBacklogBytes, 1L << 20, 1L << 50, doc: "Landing-log bytes not yet committed by every sink; past it requests get 503 with Retry-After until the sinks catch up."),
            SegmentBytes = map.Size("segment_bytes", Default.SegmentBytes, 64L << 10, 4L << 30, doc: "Size at which the landing log starts a new segment file; whole segments are deleted once every sink has them."),
            BatchLinger = map.Duration("batch_linger", Default.BatchLinger, doc: "How long the pipeline gathers landed events before handing a batch to the sinks: fewer, larger lake commits at the cost of that much freshness."),
            BatchMaxEvents = map.Int("batch_max_events", Default.BatchMaxEvents, 1, 1_000_000, doc: "Most events in one pipeline batch."),
            Metrics = map.Map("metrics", doc: "The metrics query API over the lake, when the recipe serves one (`GET /v1/metrics`).") is { } metrics ? MetricsApiOptions.Parse(metrics) : null,
            JsonColumn = map.String("json_column", doc: "A text column that carries each event's JSON exactly as received, next to the flattened fields. For streams whose events a later step maps itself (the `attorney_events` step of repeat-reminder): the schema then only declares what ingest must check (the dedup key, the time field)."),
        };
        if (options.JsonColumn is { } jsonColumn && !IdentifierRegex().IsMatch(jsonColumn))
        {
            map.Error("json_column", $"'{jsonColumn}' must be letters, digits and '_'");
        }

        if (options.BatchLinger > TimeSpan.FromSeconds(1))
        {
            map.Error("batch_linger", $"must be at most 1s (events must be visible within a second), got {options.BatchLinger.TotalMilliseconds:0}ms");
        }

        if (options.MaxEventBytes > options.MaxRequestBytes)
        {
            map.Error("max_event_bytes", $"must not exceed max_request_bytes ({Sizes.Format(options.MaxRequestBytes)})");
        }

        if (options.QueueBytes < options.MaxRequestBytes)
        {
            map.Error("queue_bytes", $"must hold at least one request of max_request_bytes ({Sizes.Format(options.MaxRequestBytes)}), got {Sizes.Format(options.QueueBytes)}");
        }

        if (options.BodyRateGrace < TimeSpan.FromSeconds(1) || options.BodyRateGrace > TimeSpan.FromMinutes(5))
        {
            // Kestrel checks the rate once a second; a grace under that means nothing, one of minutes lets a trickle hold memory that long.
            map.Error("body_rate_grace", $"must be between 1s and 5m, got {options.BodyRateGrace}");
        }

        options.ValidateFields(map);
        return options;
    }

    private void ValidateFields(ConfigMap map)
    {
        if (Versions.Count == 0)
        {
            return;
        }

        var all = Versions.SelectMany(v => v.Fields).ToList();
        if (TimeField.Length > 0)
        {
            foreach (var v in Versions)
            {
                var spec = v.Fields.FirstOrDefault(f => f.Path == TimeField);
                if (spec is null) { map.Error("time_field", $"'{TimeField}' is not a field of schema version {v.Version} ({v.File})"); }
                else if (spec.Type != FieldType.Timestamp || !spec.Required || spec.RequiredWhen is not null) { map.Error("time_field", $"'{TimeField}' must be a required timestamp field in {v.File}"); }
            }
        }

        if (DedupKey is { Length: > 0 } key)
        {
            foreach (var v in Versions)
            {
                var spec = v.Fields.FirstOrDefault(f => f.Path == key);
                if (spec is null || spec.Type != FieldType.String || !spec.Required || spec.RequiredWhen is not null)
                {
                    map.Error("dedup", $"dedup key '{key}' must be a required text field in every schema version ({v.File} has {(spec is null ? "no such field" : $"it as {spec.Type.Name()}{(spec.Required ? "" : ", optional")}")})");
                }
            }
        }

        foreach (var reserved in new[] { TenantField, VersionField, StreamShape.ReceivedAtColumn, StreamShape.OffsetColumn, JsonColumn ?? StreamShape.OffsetColumn })
        {
            if (all.Any(f => f.Path == reserved || f.Column == reserved))
            {
                map.Error("schemas", $"'{reserved}' is filled by Sluice (tenant from the token, version, arrival time, log offset) and must not be declared as a schema field");
            }
        }

        foreach (var group in all.GroupBy(f => f.Column, StringComparer.Ordinal))
        {
            if (group.Select(f => f.Type).Distinct().Count() > 1)
            {
                map.Error("schemas", $"field '{group.First().Path}' has different types across schema versions ({string.Join(", ", group.Select(f => f.Type.Name()).Distinct())}); one table cannot hold both");
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex StreamNameRegex();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    internal static partial Regex IdentifierRegex();
}

/// <summary>
/// Options of the metrics query API (<c>GET /v1/metrics</c>): which lake table it reads and which of its columns mean
/// what. The tenant filter is always applied from the caller's token.
/// </summary>
public sealed class MetricsApiOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly MetricsApiOptions Default = new();

    /// <summary>The lake table as <c>zone.name</c> (required).</summary>
    public string Table { get; init; } = "";

    /// <summary>Timestamp column the <c>from</c>/<c>to</c> range and the hour/day grouping apply to (required).</summary>
    public string TimeColumn { get; init; } = "";

    /// <summary>Tenant column.</summary>
    public string TenantColumn { get; init; } = "tenant_id";

    /// <summary>Column grouped by with <c>group_by=event_type</c>.</summary>
    public string TypeColumn { get; init; } = "event_type";

    /// <summary>Column counted distinct as <c>unique_customers</c>.</summary>
    public string CustomerColumn { get; init; } = "customer_id";

    /// <summary>SQL expression summed as <c>revenue</c>, written by the recipe's author (never from a request). Default 0.</summary>
    public string Revenue { get; init; } = "0";

    /// <summary>Widest <c>from</c>..<c>to</c> range a request may ask for.</summary>
    public TimeSpan MaxRange { get; init; } = TimeSpan.FromDays(400);

    public static MetricsApiOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var options = new MetricsApiOptions
        {
            Table = map.RequiredString("table", doc: "The lake table as `zone.name` (required)."),
            TimeColumn = map.RequiredString("time_column", doc: "Timestamp column the `from`/`to` range and the hour/day grouping apply to (required)."),
            TenantColumn = map.String("tenant_column", Default.TenantColumn, doc: "Tenant column.") ?? Default.TenantColumn,
            TypeColumn = map.String("type_column", Default.TypeColumn, doc: "Column grouped by with `group_by=event_type`.") ?? Default.TypeColumn,
            CustomerColumn = map.String("customer_column", Default.CustomerColumn, doc: "Column counted distinct as `unique_customers`.") ?? Default.CustomerColumn,
            Revenue = map.String("revenue", Default.Revenue, doc: "SQL expression summed as `revenue`, written by the recipe's author (never from a request).") ?? Default.Revenue,
            MaxRange = map.Duration("max_range", Default.MaxRange, doc: "Widest `from`..`to` range a request may ask for."),
        };
        map.Done();
        var parts = options.Table.Split('.');
        if (options.Table.Length > 0 && (parts.Length != 2 || !HttpIngestOptions.IdentifierRegex().IsMatch(parts[0]) || !HttpIngestOptions.IdentifierRegex().IsMatch(parts[1])))
        {
            map.Error("table", $"'{options.Table}' must be zone.name (for example analytics.events)");
        }

        foreach (var (key, column) in new[] { ("time_column", options.TimeColumn), ("tenant_column", options.TenantColumn), ("type_column", options.TypeColumn), ("customer_column", options.CustomerColumn) })
        {
            if (column.Length > 0 && !HttpIngestOptions.IdentifierRegex().IsMatch(column)) { map.Error(key, $"'{column}' must be a column name (letters, digits, '_')"); }
        }

        if (options.Revenue.Contains(';', StringComparison.Ordinal)) { map.Error("revenue", "must be one SQL expression, without ';'"); }
        return options;
    }
}
