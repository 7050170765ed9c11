using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The dedup index's table: key hash to arrival second (Unix time), by open addressing with linear probing over two
/// parallel arrays (keys, seconds). A lookup of a key among millions is one cache miss in the key array, and a slot
/// costs 12 bytes, so 5,000,000 keys take about 100 MB. Key 0 marks a free slot: it is never stored (hashes are never
/// 0) and never found. Removal shifts the following run back, so there are no tombstones and lookups stay short however
/// many keys come and go. Not thread-safe.
/// </summary>
internal sealed class KeyArrivals
{
    /// <summary>Grown past three quarters full: lookups of absent keys (most of them) then probe a few slots at most.</summary>
    private const int MaxLoadPercent = 75;

    private ulong[] _keys = new ulong[16];

    // A free slot's second is uint.MaxValue, so a scan for old keys reads the (smaller) seconds array alone.
    private uint[] _seconds = Free(16);
    private int _shift = 64 - 4;

    public int Count { get; private set; }

    public bool TryGetValue(ulong key, out uint second)
    {
        var found = TryFind(key, out var slot);
        second = found ? _seconds[slot] : 0;
        return found;
    }

    public bool ContainsKey(ulong key) => TryFind(key, out _);

    /// <summary>
    /// Starts loading the key's home slot into the cache, so a lookup soon after does not wait for memory: a request's
    /// keys are looked up one after another, and with the loads started ahead their cache misses overlap.
    /// </summary>
    public unsafe void Prefetch(ulong key)
    {
        if (!Sse.IsSupported) { return; }
        var slot = Home(key);
        // Only a hint: an address the collector has since moved costs nothing but the hint.
        Sse.Prefetch0(Unsafe.AsPointer(ref _keys[slot]));
        Sse.Prefetch0(Unsafe.AsPointer(ref _seconds[slot]));
    }

    /// <summary>False, and the second kept, when the key is already there.</summary>
    public bool TryAdd(ulong key, uint second)
    {
        ArgumentOutOfRangeException.ThrowIfZero(key);
        if ((long)(Count + 1) * 100 > (long)_keys.Length * MaxLoadPercent)
        {
            Grow();
        }

        if (TryFind(key, out var slot))
        {
            return false;
        }

        _keys[slot] = key;
        _seconds[slot] = second;
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
        var keys = _keys;
        var mask = keys.Length - 1;
        for (var j = (hole + 1) & mask; keys[j] != 0; j = (j + 1) & mask)
        {
            var home = Home(keys[j]);
            var stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
            if (stays) { continue; }
            keys[hole] = keys[j];
            _seconds[hole] = _seconds[j];
            hole = j;
        }

        keys[hole] = 0;
        _seconds[hole] = uint.MaxValue;
        Count--;
        return true;
    }

    /// <summary>Adds every key that arrived before <paramref name="second"/> to <paramref name="into"/> (one pass over the table).</summary>
    public void CollectBefore(uint second, List<ulong> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var keys = _keys;
        var seconds = _seconds;
        var i = 0;
        // Eight seconds compared at once: a full table is scanned about once a second at high rates, and only a
        // sixteenth of its keys is old.
        if (Vector256.IsHardwareAccelerated)
        {
            var limit = Vector256.Create(second);
            for (; i + Vector256<uint>.Count <= seconds.Length; i += Vector256<uint>.Count)
            {
                var old = Vector256.LessThan(Vector256.LoadUnsafe(ref seconds[i]), limit).ExtractMostSignificantBits();
                for (; old != 0; old &= old - 1) { into.Add(keys[i + System.Numerics.BitOperations.TrailingZeroCount(old)]); }
            }
        }

        for (; i < seconds.Length; i++)
        {
            if (seconds[i] < second) { into.Add(keys[i]); }
        }
    }

    /// <summary>The key's slot, or (false) the free slot where it would go. Key 0 is never found: it marks free slots.</summary>
    private bool TryFind(ulong key, out int slot)
    {
        var keys = _keys;
        var mask = keys.Length - 1;
        for (slot = Home(key); keys[slot] != 0; slot = (slot + 1) & mask)
        {
            if (keys[slot] == key) { return true; }
        }

        return false;
    }

    /// <summary>Fibonacci hashing: the top bits of the key times 2^64/φ, so that even keys that are not hashes spread.</summary>
    private int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    private static uint[] Free(int slots)
    {
        var seconds = new uint[slots];
        Array.Fill(seconds, uint.MaxValue);
        return seconds;
    }

    private void Grow()
    {
        var (oldKeys, oldSeconds) = (_keys, _seconds);
        _keys = new ulong[oldKeys.Length * 2];
        _seconds = Free(oldKeys.Length * 2);
        _shift--;
        Count = 0;
        for (var i = 0; i < oldKeys.Length; i++)
        {
            if (oldKeys[i] != 0) { TryAdd(oldKeys[i], oldSeconds[i]); }
        }
    }
}
