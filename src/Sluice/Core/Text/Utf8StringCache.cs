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
    public const int Slots = 4096;
    public const int MaxBytes = 64;
    public const int Probe = 8192;
    public const int Rest = 65536;

    private readonly string?[] _slots = new string?[Slots];
    private int _lookups;
    private int _hits;
    private int _resting;

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxBytes || _resting > 0 && --_resting >= 0 || !Ascii.IsValid(utf8))
        {
            return Encoding.UTF8.GetString(utf8);
        }

        if (++_lookups == Probe)
        {
            if (_hits < Probe / 20) { _resting = Rest; }
            _lookups = _hits = 0;
        }

        var slot = (int)((uint)Hash(utf8) % Slots);
        var cached = _slots[slot];
        if (cached is not null && Ascii.Equals(utf8, cached))
        {
            _hits++;
            return cached;
        }

        var value = Encoding.ASCII.GetString(utf8);
        _slots[slot] = value;
        return value;
    }

    private static int Hash(ReadOnlySpan<byte> bytes)
    {
        // FNV-1a: short keys, no allocation, good enough spread for a direct-mapped table.
        var h = 2166136261u;
        foreach (var b in bytes)
        {
            h = (h ^ b) * 16777619u;
        }

        return (int)h;
    }
}
