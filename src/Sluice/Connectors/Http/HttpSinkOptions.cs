using Sluice.Core.Config;

namespace Sluice.Connectors.Http;

/// <summary>Options of the <c>http</c> sink (an external API we do not control), read from the pipeline's <c>sinks:</c> entry and validated at load.</summary>
public sealed class HttpSinkOptions : Core.Recipes.IConnectionCheck, Core.Pipeline.IChecksBatchShape
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly HttpSinkOptions Default = OptionDefaults.Of<HttpSinkOptions>();

    /// <summary>At load: the table sent reaches the sink (a sink whose table never comes sends nothing, silently).</summary>
    public void Check(Core.Pipeline.BatchShape input, Core.Pipeline.ShapeProblems problems)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(problems);
        problems.Add("table", "http sink", input.MissingTable(Table));
    }

    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => HttpSinkPreflight.CheckAsync(Url, ct);

    /// <summary>The sink's name: its checkpoint key and dead-letter source <c>http:&lt;recipe&gt;/&lt;name&gt;</c>.</summary>
    public string Name { get; init; } = "api";

    /// <summary>Where batches are POSTed (required; may be <c>${VAR:-default}</c>).</summary>
    public required Uri Url { get; init; }

    /// <summary>The batch table sent.</summary>
    public string Table { get; init; } = "events_enriched";

    /// <summary>Rows per request at most; a batch is sent as several requests when larger.</summary>
    public int RequestRows { get; init; } = 500;

    /// <summary>Timeout of one attempt.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries after the first attempt, on 5xx, 408, 429, timeouts and connection errors.</summary>
    public int Retries { get; init; } = 5;

    /// <summary>Base of the exponential back-off, with jitter. A <c>Retry-After</c> header wins.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest back-off between attempts, and longest <c>Retry-After</c> honoured.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Share of failed attempts within <see cref="BreakerSampling"/> that opens the circuit.</summary>
    public double BreakerFailureRatio { get; init; } = 0.5;

    /// <summary>Attempts within the sampling window before the breaker may open.</summary>
    public int BreakerMinimumThroughput { get; init; } = 10;

    /// <summary>Window over which the failure ratio is measured.</summary>
    public TimeSpan BreakerSampling { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit fails attempts at once before one is let through again.</summary>
    public TimeSpan BreakerDuration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Requests per second at most, on average.</summary>
    public double RateLimit { get; init; } = 50;

    /// <summary>Requests allowed in a burst above the average rate.</summary>
    public int RateBurst { get; init; } = 10;

    public static HttpSinkOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var url = EnvText.Expand(map.RequiredString("url", doc: "Where batches are POSTed (required; may be `${VAR:-default}`)."));
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
        {
            if (url.Length > 0) { map.Error("url", $"http: not an http(s) URL: '{url}'"); }
            uri = new Uri("http://127.0.0.1/");
        }

        var options = new HttpSinkOptions
        {
            Name = map.String("name", Default.Name, doc: "The sink's name: its checkpoint key and dead-letter source `http:<recipe>/<name>`.") ?? Default.Name,
            Url = uri,
            Table = map.String("table", Default.Table, doc: "The batch table sent.") ?? Default.Table,
            RequestRows = map.Int("request_rows", Default.RequestRows, 1, 100_000, doc: "Rows per request at most; a batch is sent as several requests when larger."),
            Timeout = map.Duration("timeout", Default.Timeout, doc: "Timeout of one attempt."),
            Retries = map.Int("retries", Default.Retries, 0, 100, doc: "Retries after the first attempt, on 5xx, 408, 429, timeouts and connection errors."),
            RetryDelay = map.Duration("retry_delay", Default.RetryDelay, doc: "Base of the exponential back-off, with jitter. A `Retry-After` header wins."),
            RetryMaxDelay = map.Duration("retry_max_delay", Default.RetryMaxDelay, doc: "Longest back-off between attempts, and longest `Retry-After` honoured."),
            BreakerFailureRatio = map.Double("breaker_failure_ratio", Default.BreakerFailureRatio, 0.01, 1, doc: "Share of failed attempts within `breaker_sampling` that opens the circuit."),
            BreakerMinimumThroughput = map.Int("breaker_minimum_throughput", Default.BreakerMinimumThroughput, 2, 10_000, doc: "Attempts within the sampling window before the breaker may open."),
            BreakerSampling = map.Duration("breaker_sampling", Default.BreakerSampling, doc: "Window over which the failure ratio is measured."),
            BreakerDuration = map.Duration("breaker_duration", Default.BreakerDuration, doc: "How long an open circuit fails attempts at once before one is let through again."),
            RateLimit = map.Double("rate_limit", Default.RateLimit, 0.01, 1_000_000, doc: "Requests per second at most, on average."),
            RateBurst = map.Int("rate_burst", Default.RateBurst, 1, 100_000, doc: "Requests allowed in a burst above the average rate."),
        };

        // Polly's own limits: a timeout of at least 10 ms, a sampling window of at least 0.5 s, a break of at least 0.5 s.
        if (options.Timeout < TimeSpan.FromMilliseconds(10)) { map.Error("timeout", "http: must be at least 10ms"); }
        if (options.BreakerSampling < TimeSpan.FromMilliseconds(500)) { map.Error("breaker_sampling", "http: must be at least 500ms"); }
        if (options.BreakerDuration < TimeSpan.FromMilliseconds(500)) { map.Error("breaker_duration", "http: must be at least 500ms"); }
        if (options.RetryDelay <= TimeSpan.Zero) { map.Error("retry_delay", "http: must be more than 0"); }
        return options;
    }
}
