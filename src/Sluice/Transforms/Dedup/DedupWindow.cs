namespace Sluice.Transforms.Dedup;

/// <summary>
/// The keys seen within the window, each with where its first row stands (a hash of <see cref="RowPlace"/>) and when it
/// was seen. Bounded: keys leave when the window passes them, and past <c>maxKeys</c> the oldest leave first (a repeat
/// of an evicted key then passes, and is counted in <see cref="Evicted"/>).
/// </summary>
internal sealed class DedupWindow(TimeSpan window, int maxKeys)
{
    private readonly Dictionary<ulong, (ulong Place, long SeenAt)> _keys = [];

    // In the order keys were first seen, which is the order of their times: the oldest is always at the head.
    private readonly Queue<(ulong Key, long SeenAt)> _order = new();

    public int Count => _keys.Count;

    public long Evicted { get; private set; }

    /// <summary>Keys that left since the last call (for the persisted copy to forget too).</summary>
    public List<ulong> Left { get; } = [];

    /// <summary>Forgets the keys seen before the window that ends at <paramref name="now"/> (unix milliseconds).</summary>
    public void Expire(long now)
    {
        var cutoff = now - (long)window.TotalMilliseconds;
        while (_order.TryPeek(out var head) && head.SeenAt < cutoff)
        {
            _order.Dequeue();
            if (_keys.TryGetValue(head.Key, out var entry) && entry.SeenAt == head.SeenAt) { _keys.Remove(head.Key); }
        }
    }

    /// <summary>
    /// True when the row is a repeat: its key was seen at another place. The same key at the same place is the row
    /// itself read again (a batch replayed after a restart), which passes.
    /// </summary>
    public bool IsRepeat(ulong key, ulong place, long now, out bool added)
    {
        added = false;
        if (_keys.TryGetValue(key, out var seen)) { return seen.Place != place; }
        Add(key, place, now);
        added = true;
        return false;
    }

    /// <summary>Remembers a key (also how the persisted window is read back at start, oldest first).</summary>
    public void Add(ulong key, ulong place, long seenAt)
    {
        _keys[key] = (place, seenAt);
        _order.Enqueue((key, seenAt));
        while (_keys.Count > maxKeys && _order.TryDequeue(out var oldest))
        {
            if (_keys.TryGetValue(oldest.Key, out var entry) && entry.SeenAt == oldest.SeenAt)
            {
                _keys.Remove(oldest.Key);
                Left.Add(oldest.Key);
                Evicted++;
            }
        }
    }
}
