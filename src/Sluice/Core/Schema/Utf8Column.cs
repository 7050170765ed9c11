using System.Text;

namespace Sluice.Core.Schema;

/// <summary>
/// A text column held as UTF-8, the values back to back in one buffer. Ingest builds text this way because a string
/// per value is what the lake writes back to UTF-8 anyway: the bytes are copied once, in order, instead of being
/// decoded, interned through a cache whose slots miss the processor's caches, and encoded again. Readers that want
/// strings get them from <see cref="ColumnBatch.Columns"/>, decoded once.
/// </summary>
public sealed class Utf8Column
{
    // Where each value ends in _bytes; a null value stores the complement (negative) of where it would end, so a
    // value's start is always the previous value's end without a second array.
    private readonly byte[] _bytes;
    private readonly int[] _ends;

    public Utf8Column(byte[] bytes, int[] ends, int count)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(ends);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, ends.Length);
        _bytes = bytes;
        _ends = ends;
        Count = count;
    }

    public int Count { get; }

    /// <summary>The bytes of every value together.</summary>
    public int ByteCount => Count == 0 ? 0 : End(Count - 1);

    public bool IsNull(int row) => _ends[row] < 0;

    /// <summary>The value's UTF-8 (empty for null: ask <see cref="IsNull"/>).</summary>
    public ReadOnlySpan<byte> Value(int row)
    {
        var start = row == 0 ? 0 : End(row - 1);
        return _bytes.AsSpan(start, End(row) - start);
    }

    public string? GetString(int row) => IsNull(row) ? null : Encoding.UTF8.GetString(Value(row));

    public string?[] ToStrings()
    {
        var strings = new string?[Count];
        for (var i = 0; i < Count; i++) { strings[i] = GetString(i); }
        return strings;
    }

    /// <summary>The rows at <paramref name="rows"/>, in that order.</summary>
    public Utf8Column Gather(ReadOnlySpan<int> rows)
    {
        var length = 0;
        foreach (var row in rows) { length += Value(row).Length; }
        var bytes = new byte[length];
        var ends = new int[rows.Length];
        var at = 0;
        for (var i = 0; i < rows.Length; i++)
        {
            var value = Value(rows[i]);
            value.CopyTo(bytes.AsSpan(at));
            at += value.Length;
            ends[i] = IsNull(rows[i]) ? ~at : at;
        }

        return new Utf8Column(bytes, ends, rows.Length);
    }

    /// <summary>The rows of <paramref name="parts"/> one after another.</summary>
    public static Utf8Column Concat(IReadOnlyList<Utf8Column> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var bytes = new byte[parts.Sum(p => (long)p.ByteCount)];
        var ends = new int[parts.Sum(p => p.Count)];
        int at = 0, row = 0;
        foreach (var part in parts)
        {
            part._bytes.AsSpan(0, part.ByteCount).CopyTo(bytes.AsSpan(at));
            for (var i = 0; i < part.Count; i++)
            {
                var end = part._ends[i];
                ends[row++] = end < 0 ? ~(EndOf(end) + at) : end + at;
            }

            at += part.ByteCount;
        }

        return new Utf8Column(bytes, ends, row);
    }

    private int End(int row) => EndOf(_ends[row]);

    /// <summary>Where a value ends, from its entry in the ends array (a null's is the complement).</summary>
    internal static int EndOf(int entry) => entry < 0 ? ~entry : entry;
}
