using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Sluice.Core.Text;

/// <summary>
/// Turns short UTF-8 values into strings, handing back the same string for a value seen recently. Event data repeats
/// its values (vehicle ids, event types, sources): reusing one string instead of allocating millions of copies is
/// measurably cheaper for the collector, and costs a hash and a compare when values do not repeat. A column whose
/// values hardly repeat (ids) stops paying for that: after <see cref="Probe"/> lookups with fewer than one hit in
/// twenty, values are decoded directly for the next <see cref="Rest"/> lookups, then the cache tries again.
/// Direct-mapped, so its size is fixed (<see cref="Slots"/> strings of at most <see cref="MaxBytes"/> bytes); not
/// thread-safe (one per reader).
/// </summary>
public sealed class Utf8StringCache
{
    public const int Slots = 1 << SlotBits;
    private const int SlotBits = 12;
    public const int MaxBytes = 64;
    public const int Probe = 8192;
    public const int Rest = 65536;

    private readonly string?[] _slots = new string?[Slots];
    private int _lookups;
    private int _hits;
    private int _resting;

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxBytes || _resting > 0 && --_resting >= 0)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        if (++_lookups == Probe)
        {
            if (_hits < Probe / 20) { _resting = Rest; }
            _lookups = _hits = 0;
        }

        var slot = Slot(utf8);
        var cached = _slots[slot];
        // A hit needs no ASCII check of its own: only ASCII strings are cached, and Ascii.Equals is false for any other byte.
        if (cached is not null && cached.Length == utf8.Length && Ascii.Equals(utf8, cached))
        {
            _hits++;
            return cached;
        }

        if (!Ascii.IsValid(utf8))
        {
            return Encoding.UTF8.GetString(utf8);
        }

        var value = Encoding.ASCII.GetString(utf8);
        _slots[slot] = value;
        return value;
    }

    /// <summary>
    /// The value's slot, from its bytes eight at a time (the last eight overlapping) and its length: a multiply per word
    /// instead of one per byte, which on short values is most of what a hit costs.
    /// </summary>
    private static int Slot(ReadOnlySpan<byte> bytes)
    {
        const ulong K = 0x9E3779B97F4A7C15UL;
        ref var b = ref MemoryMarshal.GetReference(bytes);
        var n = bytes.Length;
        ulong h;
        if (n >= 8)
        {
            h = (ulong)n;
            for (var i = 0; i + 8 < n; i += 8)
            {
                h = (h ^ Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref b, i))) * K;
            }

            h ^= Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref b, n - 8));
        }
        else if (n >= 4)
        {
            h = ((ulong)Unsafe.ReadUnaligned<uint>(ref b) << 32 | Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, n - 4))) ^ ((ulong)n << 56);
        }
        else
        {
            h = n == 0 ? 0 : b | (ulong)Unsafe.Add(ref b, n >> 1) << 8 | (ulong)Unsafe.Add(ref b, n - 1) << 16 | (ulong)n << 24;
        }

        // The top bits of a multiply are its best mixed ones.
        return (int)((h * K) >> (64 - SlotBits));
    }
}
