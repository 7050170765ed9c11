using Prometheus;

namespace Sluice.Serving.Observability;

/// <summary>
/// Every series a server exports at <c>GET /metrics</c>, in one prometheus-net registry per server (so tests running
/// several servers in one process see their own numbers): counters and histograms updated on the request path, and
/// gauges set by callbacks just before each scrape (queue fill, backlog, the status board's figures).
/// </summary>
public sealed class ServerMetrics
{
    private readonly CollectorRegistry _registry = Prometheus.Metrics.NewCustomRegistry();
    private readonly MetricFactory _factory;

    public ServerMetrics() => _factory = Prometheus.Metrics.WithCustomRegistry(_registry);

    /// <summary>A counter; asked again by name (a second stream's endpoint), the same one.</summary>
    public Counter Counter(string name, string help, params string[] labels) => _factory.CreateCounter(name, help, labels);

    public Gauge Gauge(string name, string help, params string[] labels) => _factory.CreateGauge(name, help, labels);

    public Histogram Histogram(string name, string help, double[] buckets, params string[] labels) =>
        _factory.CreateHistogram(name, help, new HistogramConfiguration { Buckets = buckets, LabelNames = labels });

    /// <summary>Sets gauges from what is true now, before every scrape.</summary>
    public void BeforeScrape(Action update) => _registry.AddBeforeCollectCallback(update);

    /// <summary>Every series in Prometheus' text format.</summary>
    public Task WriteAsync(Stream to, CancellationToken ct) => _registry.CollectAndExportAsTextAsync(to, ct);
}
