using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Connectors.Pull;

/// <summary>
/// How far an incremental pull got: the newest modification stamp landed (<see cref="High"/>), and every record
/// (id and stamp) landed within the overlap window below it. The next pull asks again from
/// <c>High - overlap</c> (changes committed late with an older stamp, clock skew between the source's writers) and
/// skips what the set names, so nothing is missed and nothing lands twice. The set is bounded: past
/// <see cref="MaxSeen"/> entries it keeps the newest stamps whole and raises <see cref="Floor"/> to the oldest stamp
/// it kept, shrinking the overlap for that burst rather than forgetting what it landed.
/// </summary>
public sealed record PullWatermark(DateTime? High, DateTime? Floor, IReadOnlySet<string> Seen)
{
    public const int MaxSeen = 50_000;

    public static PullWatermark Empty { get; } = new(null, null, new HashSet<string>(StringComparer.Ordinal));

    /// <summary>The stamp the next query starts from (inclusive), or null for everything.</summary>
    public DateTime? Since(TimeSpan overlap)
    {
        if (High is not { } high)
        {
            return null;
        }

        var since = high - overlap;
        return Floor is { } floor && floor > since ? floor : since;
    }

    public bool Landed(string id, DateTime stamp) => Seen.Contains(Entry(id, stamp));

    /// <summary>The watermark after landing <paramref name="records"/>.</summary>
    public PullWatermark Advance(IEnumerable<(string Id, DateTime Stamp)> records, TimeSpan overlap)
    {
        ArgumentNullException.ThrowIfNull(records);
        var high = High;
        var all = new List<(string Id, DateTime Stamp)>(Seen.Select(ParseEntry));
        foreach (var r in records)
        {
            all.Add(r);
            if (high is null || r.Stamp > high) { high = r.Stamp; }
        }

        if (high is null)
        {
            return this;
        }

        var cut = high.Value - overlap;
        var kept = all.Where(r => r.Stamp >= cut).OrderByDescending(r => r.Stamp).ToList();
        DateTime? floor = Floor is { } f && f >= cut ? f : null;
        if (kept.Count > MaxSeen)
        {
            // Keep whole stamps, newest first, so that everything at or above the new floor is in the set; a single
            // stamp shared by more records than the bound is kept whole.
            var boundary = kept[MaxSeen - 1].Stamp;
            var newer = kept.TakeWhile(r => r.Stamp > boundary).ToList();
            kept = newer.Count > 0 ? newer : kept.TakeWhile(r => r.Stamp == kept[0].Stamp).ToList();
            floor = kept[^1].Stamp;
        }

        return new PullWatermark(high, floor, kept.Select(r => Entry(r.Id, r.Stamp)).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>A record's place in its source, for dead letters: <c>&lt;id&gt; modified &lt;stamp&gt;</c>.</summary>
    public static string Describe(string id, DateTime stamp) =>
        string.Create(CultureInfo.InvariantCulture, $"{id} modified {stamp:yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'}");

    public string ToJson() => JsonSerializer.Serialize(new State
    {
        High = High?.ToString("O", CultureInfo.InvariantCulture),
        Floor = Floor?.ToString("O", CultureInfo.InvariantCulture),
        Seen = Seen.Order(StringComparer.Ordinal).ToList(),
    });

    public static PullWatermark Parse(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return Empty;
        }

        var state = JsonSerializer.Deserialize<State>(json) ?? new State();
        return new PullWatermark(Time(state.High), Time(state.Floor), (state.Seen ?? []).ToHashSet(StringComparer.Ordinal));
    }

    private static DateTime? Time(string? text) =>
        text is null ? null : DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);

    private static string Entry(string id, DateTime stamp) => string.Create(CultureInfo.InvariantCulture, $"{stamp.Ticks}|{id}");

    private static (string Id, DateTime Stamp) ParseEntry(string entry)
    {
        var bar = entry.IndexOf('|', StringComparison.Ordinal);
        return (entry[(bar + 1)..], new DateTime(long.Parse(entry.AsSpan(0, bar), CultureInfo.InvariantCulture), DateTimeKind.Utc));
    }

    private sealed class State
    {
        [JsonPropertyName("high")]
        public string? High { get; set; }

        [JsonPropertyName("floor")]
        public string? Floor { get; set; }

        [JsonPropertyName("seen")]
        public List<string>? Seen { get; set; }
    }
}
