using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Sluice.Serving.Observability;

/// <summary>
/// The few metrics the server exports at <c>GET /metrics</c>, in Prometheus' text format: counters and histograms
/// updated on the request path (lock-free), gauges read when scraped. One instance per server, so tests running several
/// servers in one process see their own numbers.
/// </summary>
public sealed class PrometheusMetrics
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram> _histograms = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<Func<IEnumerable<GaugeValue>>> _gauges = [];

    public Counter Counter(string name, string help) => _counters.GetOrAdd(name, n => new Counter(n, help));

    public Histogram Histogram(string name, string help, double[] buckets) => _histograms.GetOrAdd(name, n => new Histogram(n, help, buckets));

    /// <summary>Adds gauges computed at scrape time (queue fill, backlog, sink lag).</summary>
    public void Gauges(Func<IEnumerable<GaugeValue>> read) => _gauges.Add(read);

    public string Render()
    {
        var sb = new StringBuilder();
        foreach (var c in _counters.Values.OrderBy(c => c.Name, StringComparer.Ordinal)) { c.Render(sb); }
        foreach (var h in _histograms.Values.OrderBy(h => h.Name, StringComparer.Ordinal)) { h.Render(sb); }
        foreach (var group in _gauges.SelectMany(g => g()).GroupBy(g => g.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            sb.Append("# HELP ").Append(group.Key).Append(' ').Append(group.First().Help).Append('\n');
            sb.Append("# TYPE ").Append(group.Key).Append(" gauge\n");
            foreach (var g in group) { sb.Append(group.Key).Append(Labels(g.Labels)).Append(' ').Append(Number(g.Value)).Append('\n'); }
        }

        return sb.ToString();
    }

    internal static string Labels(string labels) => labels.Length == 0 ? "" : "{" + labels + "}";

    internal static string Number(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A label set in text form, values escaped: <c>stream="ecommerce",code="202"</c>.</summary>
    public static string Label(params (string Name, string Value)[] labels) =>
        string.Join(',', labels.Select(l => $"{l.Name}=\"{l.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\""));
}

public readonly record struct GaugeValue(string Name, string Help, string Labels, double Value);

public sealed class Counter(string name, string help)
{
    private readonly ConcurrentDictionary<string, StrongBoxLong> _values = new(StringComparer.Ordinal);

    public string Name { get; } = name;

    public void Inc(string labels, long by = 1) => Interlocked.Add(ref _values.GetOrAdd(labels, _ => new StrongBoxLong()).Value, by);

    public long Get(string labels) => _values.TryGetValue(labels, out var v) ? Interlocked.Read(ref v.Value) : 0;

    internal void Render(StringBuilder sb)
    {
        sb.Append("# HELP ").Append(Name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(Name).Append(" counter\n");
        foreach (var (labels, v) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            sb.Append(Name).Append(PrometheusMetrics.Labels(labels)).Append(' ').Append(Interlocked.Read(ref v.Value).ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private sealed class StrongBoxLong
    {
        public long Value;
    }
}

public sealed class Histogram(string name, string help, double[] buckets)
{
    private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);

    public string Name { get; } = name;

    public void Observe(string labels, double value)
    {
        var s = _series.GetOrAdd(labels, _ => new Series(buckets.Length));
        var i = Array.BinarySearch(buckets, value);
        if (i < 0) { i = ~i; }
        Interlocked.Increment(ref s.Counts[i]);
        lock (s) { s.Sum += value; }
    }

    internal void Render(StringBuilder sb)
    {
        sb.Append("# HELP ").Append(Name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(Name).Append(" histogram\n");
        foreach (var (labels, s) in _series.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            long cumulative = 0;
            var prefix = labels.Length == 0 ? "" : labels + ",";
            for (var i = 0; i < buckets.Length; i++)
            {
                cumulative += Interlocked.Read(ref s.Counts[i]);
                sb.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"").Append(PrometheusMetrics.Number(buckets[i])).Append("\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }

            cumulative += Interlocked.Read(ref s.Counts[buckets.Length]);
            sb.Append(Name).Append("_bucket{").Append(prefix).Append("le=\"+Inf\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            double sum;
            lock (s) { sum = s.Sum; }
            sb.Append(Name).Append("_sum").Append(PrometheusMetrics.Labels(labels)).Append(' ').Append(PrometheusMetrics.Number(sum)).Append('\n');
            sb.Append(Name).Append("_count").Append(PrometheusMetrics.Labels(labels)).Append(' ').Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private sealed class Series(int buckets)
    {
        public long[] Counts { get; } = new long[buckets + 1];

        public double Sum { get; set; }
    }
}
