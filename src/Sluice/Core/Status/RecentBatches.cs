namespace Sluice.Core.Status;

/// <summary>
/// The last <see cref="Capacity"/> batches a pipeline read, each with what became of it in every sink (committed, or
/// failed with the reason) and how long it took from the read to the last sink's outcome: the console's "Recent batches".
/// A ring, so bounded whatever the rate; callers hold no lock (one short one here).
/// </summary>
public sealed class RecentBatches
{
    /// <summary>Enough to see the last minutes of a slow pipeline or the last second of a busy one on one page.</summary>
    public const int Capacity = 50;

    private readonly LinkedList<Entry> _entries = new();
    private readonly Lock _lock = new();
    private long? _lastPosition;

    internal void Read(DateTimeOffset at, int records, long? position, long? bytes)
    {
        lock (_lock)
        {
            // Positions of landing logs are bytes: what this batch spans is the distance from the batch before.
            var from = position is null ? null : _lastPosition;
            _entries.AddLast(new Entry(at, records, from, position, bytes ?? (from is { } f && position is { } p && p >= f ? p - f : null)));
            if (_entries.Count > Capacity) { _entries.RemoveFirst(); }
            if (position is not null) { _lastPosition = position; }
        }
    }

    /// <summary>
    /// A sink's outcome: with a position, for every batch up to it the sink had no outcome for (a joined write commits
    /// several); without one, for the oldest such batch (sources without positions read and commit one at a time).
    /// </summary>
    internal void Outcome(string sink, string outcome, string? error, long? position, DateTimeOffset at, int sinks)
    {
        lock (_lock)
        {
            foreach (var e in _entries)
            {
                if (e.Sinks.ContainsKey(sink)) { continue; }
                if (position is { } p && e.To is { } to && to > p) { break; }
                e.Sinks[sink] = (outcome, at, error);
                if (e.Sinks.Count >= sinks) { e.Done = at; }
                if (position is null) { break; }
            }
        }
    }

    /// <summary>A sink failed: every batch it had no outcome for failed there, with the reason.</summary>
    internal void Failed(string sink, string error, DateTimeOffset at, int sinks)
    {
        lock (_lock)
        {
            foreach (var e in _entries.Where(e => !e.Sinks.ContainsKey(sink)))
            {
                e.Sinks[sink] = ("failed", at, error);
                if (e.Sinks.Count >= sinks) { e.Done = at; }
            }
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<BatchView> Views
    {
        get
        {
            lock (_lock)
            {
                return _entries.Reverse().Select(e => new BatchView(
                    e.At.UtcDateTime, e.Records, e.Bytes, e.From, e.To, e.Done is { } d ? (d - e.At).TotalSeconds : null,
                    e.Sinks.Select(s => new BatchOutcome(s.Key, s.Value.Outcome, s.Value.At.UtcDateTime, s.Value.Error)).OrderBy(s => s.Sink, StringComparer.Ordinal).ToList())).ToList();
            }
        }
    }

    private sealed class Entry(DateTimeOffset at, int records, long? from, long? to, long? bytes)
    {
        public DateTimeOffset At { get; } = at;

        public int Records { get; } = records;

        public long? From { get; } = from;

        public long? To { get; } = to;

        public long? Bytes { get; } = bytes;

        public Dictionary<string, (string Outcome, DateTimeOffset At, string? Error)> Sinks { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset? Done { get; set; }
    }
}
