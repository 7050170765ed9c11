using System.Globalization;

namespace Sluice.Core.Text;

/// <summary>
/// How far a long command is and when it should end: the rate is taken from the first figures seen to the latest, so
/// the estimate is whole-run throughput (steadier than the last interval's). The plain line a command prints when its
/// output is not a terminal: <c>title: done/total (what) pct%, eta 1m 05s</c>.
/// </summary>
public sealed class ProgressEstimate(TimeProvider time)
{
    private (long Done, long At)? _first;

    /// <summary>Time left at the rate so far; null until something was done since the first figures.</summary>
    public TimeSpan? Remaining(long done, long total)
    {
        var now = time.GetTimestamp();
        if (_first is not { } first) { _first = (done, now); return null; }
        var elapsed = time.GetElapsedTime(first.At, now);
        var progressed = done - first.Done;
        if (progressed <= 0 || elapsed <= TimeSpan.Zero) { return null; }
        return TimeSpan.FromTicks((long)(elapsed.Ticks * (double)Math.Max(0, total - done) / progressed));
    }

    public string Line(string title, long done, long total, string? what)
    {
        var eta = Remaining(done, total);
        var percent = total > 0 ? $" {100.0 * done / total:0}%" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{title}: {done}/{total}{(string.IsNullOrEmpty(what) ? "" : $" ({what})")}{percent}{(eta is { } e ? $", eta {Format(e)}" : "")}");
    }

    public static string Format(TimeSpan span) => span.TotalHours >= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours}h {span.Minutes:00}m")
        : span.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{span.Minutes}m {span.Seconds:00}s")
        : string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(span.TotalSeconds):0}s");
}
