namespace Sluice.Connectors.HttpIngest;

/// <summary>
/// The dedup index's lookup table: key hash to arrival minute, by open addressing with linear probing over one array
/// of (key, minute) pairs. A lookup in a table of millions of keys is then one cache miss, where a
/// <see cref="Dictionary{TKey,TValue}"/> takes two (bucket, then entry); it is also smaller per key. Key 0 marks a
/// free slot: it is never stored (hashes are never 0) and never found. Removal shifts the following run back, so
/// there are no tombstones and lookups stay short however many keys come and go. Not thread-safe.
/// </summary>
internal sealed class KeyMinutes
{
    /// <summary>Grown past three quarters full: lookups of absent keys (most of them) then probe a few slots at most.</summary>
    private const int MaxLoadPercent = 75;

    private Slot[] _slots = new Slot[16];
    private int _shift = 64 - 4;

    public int Count { get; private set; }

    public bool TryGetValue(ulong key, out long minute)
    {
        var found = TryFind(key, out var slot);
        minute = found ? _slots[slot].Minute : 0;
        return found;
    }

    public bool ContainsKey(ulong key) => TryFind(key, out _);

    /// <summary>False, and the minute kept, when the key is already there.</summary>
    public bool TryAdd(ulong key, long minute)
    {
        ArgumentOutOfRangeException.ThrowIfZero(key);
        if ((long)(Count + 1) * 100 > (long)_slots.Length * MaxLoadPercent)
        {
            Grow();
        }

        if (TryFind(key, out var slot))
        {
            return false;
        }

        _slots[slot] = new Slot(key, minute);
        Count++;
        return true;
    }

    public bool Remove(ulong key)
    {
        if (!TryFind(key, out var hole))
        {
            return false;
        }

        // A later key of the run stays when its home lies cyclically in (hole, where it is]; any other would be cut
        // off from its home by the hole, so it moves into it and leaves a hole where it was.
        var slots = _slots;
        var mask = slots.Length - 1;
        for (var j = (hole + 1) & mask; slots[j].Key != 0; j = (j + 1) & mask)
        {
            var home = Home(slots[j].Key);
            var stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
            if (stays) { continue; }
            slots[hole] = slots[j];
            hole = j;
        }

        slots[hole] = default;
        Count--;
        return true;
    }

    /// <summary>The key's slot, or (false) the free slot where it would go. Key 0 is never found: it marks free slots.</summary>
    private bool TryFind(ulong key, out int slot)
    {
        var slots = _slots;
        var mask = slots.Length - 1;
        for (slot = Home(key); slots[slot].Key != 0; slot = (slot + 1) & mask)
        {
            if (slots[slot].Key == key) { return true; }
        }

        return false;
    }

    /// <summary>Fibonacci hashing: the top bits of the key times 2^64/φ, so that even keys that are not hashes spread.</summary>
    private int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    private void Grow()
    {
        var old = _slots;
        _slots = new Slot[old.Length * 2];
        _shift--;
        Count = 0;
        foreach (var slot in old)
        {
            if (slot.Key != 0) { TryAdd(slot.Key, slot.Minute); }
        }
    }

    private readonly record struct Slot(ulong Key, long Minute);
}
