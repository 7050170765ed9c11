using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Lake.Parquet;

/// <summary>
/// One column of one row group as a single Parquet data page (v1): definition levels (every column is optional, so one
/// bit per row, RLE/bit-packed hybrid), the present values PLAIN-encoded, the page Snappy-compressed, and exact
/// statistics (min, max, null count) so readers can skip row groups. Values are encoded straight from the batch's
/// arrays into pooled buffers: no per-value objects.
/// </summary>
internal static class ParquetColumnChunk
{
    /// <summary>Parquet physical types (parquet.thrift <c>Type</c>).</summary>
    public const int Boolean = 0, Int32 = 1, Int64 = 2, Double = 5, ByteArray = 6, FixedLenByteArray = 7;

    /// <summary>Encodings: PLAIN for values, RLE for definition levels.</summary>
    public const int Plain = 0, Rle = 3;

    /// <summary>Strings longer than this leave the chunk without min/max (statistics must be exact, not truncated).</summary>
    private const int MaxStatBytes = 256;

    private static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;
    private static readonly int EpochDay = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    public static int PhysicalType(FieldType type) => type switch
    {
        FieldType.String => ByteArray,
        FieldType.Integer or FieldType.Timestamp => Int64,
        FieldType.Double => Double,
        FieldType.Boolean => Boolean,
        FieldType.Date => Int32,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>A field's physical type: a decimal of precision 1-38 is a DECIMAL on a fixed-length byte array, any other a UTF-8 string.</summary>
    public static int PhysicalType(FieldSpec field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field.Type != FieldType.Decimal ? PhysicalType(field.Type) : field.IsDecimal128() ? FixedLenByteArray : ByteArray;
    }

    /// <summary>The bytes of a DECIMAL of <paramref name="precision"/> digits: the fewest whose two's complement holds 10^precision - 1.</summary>
    public static int DecimalBytes(int precision) => (int)Math.Ceiling((precision * Math.Log2(10) + 1) / 8);

    /// <summary>
    /// Encodes <paramref name="rows"/> values of <paramref name="column"/> as one page, header included, onto
    /// <paramref name="output"/>. A date or time column's <paramref name="verbatim"/> texts (years after 9999, BC: the lake
    /// sink lets no other through) are written as the values they name: Parquet's counts since 1970 reach them.
    /// </summary>
    public static ChunkInfo Write(Stream output, FieldSpec field, Array column, int rows, string?[]? verbatim = null)
    {
        ArgumentNullException.ThrowIfNull(field);
        var scratch = Scratch.Take();
        try
        {
            var values = scratch.Values;
            var defined = scratch.Defined(rows);
            var stats = new Stats();
            switch (column)
            {
                case string?[] s when field.IsDecimal128(): Decimals(s, rows, field, values, defined, ref stats); break;
                case string?[] s: Strings(s, rows, values, defined, ref stats); break;
                case long?[] l: Longs(l, rows, values, defined, ref stats); break;
                case DateTime?[] t: Timestamps(t, verbatim, rows, values, defined, ref stats); break;
                case double?[] d: Doubles(d, rows, values, defined, ref stats); break;
                case bool?[] b: Booleans(b, rows, values, defined, ref stats); break;
                case DateOnly?[] d: Dates(d, verbatim, rows, values, defined, ref stats); break;
                default: throw new InvalidOperationException($"Column '{field.Name}' has an unsupported array type {column.GetType().Name}.");
            }

            return Page(output, field, rows, scratch, defined, stats);
        }
        finally
        {
            scratch.Release();
        }
    }

    /// <summary>Encodes a UTF-8 text column (<see cref="Utf8Column"/>) as one page: its bytes are copied, not transcoded.</summary>
    public static ChunkInfo Write(Stream output, FieldSpec field, Utf8Column column)
    {
        ArgumentNullException.ThrowIfNull(column);
        var scratch = Scratch.Take();
        try
        {
            var stats = new Stats();
            var defined = scratch.Defined(column.Count);
            Texts(column, scratch.Values, defined, ref stats);
            return Page(output, field, column.Count, scratch, defined, stats);
        }
        finally
        {
            scratch.Release();
        }
    }

    /// <summary>The page around encoded values: definition levels (length-prefixed) and the values, compressed, after its header.</summary>
    private static ChunkInfo Page(Stream output, FieldSpec field, int rows, Scratch scratch, byte[] defined, Stats stats)
    {
        var body = scratch.Body;
        var levels = body.GetSpan(4);
        body.Advance(4);
        var levelsStart = body.WrittenCount;
        DefinitionLevels(body, defined, rows, rows - (int)stats.Nulls);
        BinaryPrimitives.WriteInt32LittleEndian(levels, body.WrittenCount - levelsStart);
        body.Write(scratch.Values.WrittenSpan);

        var compressed = scratch.Compressed(Snappier.Snappy.GetMaxCompressedLength(body.WrittenCount));
        var compressedSize = Snappier.Snappy.Compress(body.WrittenSpan, compressed);
        var header = scratch.Header;
        var thrift = new ThriftCompactWriter(header);
        thrift.BeginStruct();
        thrift.I32(1, 0); // DATA_PAGE
        thrift.I32(2, body.WrittenCount);
        thrift.I32(3, compressedSize);
        thrift.Struct(5);
        thrift.I32(1, rows);
        thrift.I32(2, Plain);
        thrift.I32(3, Rle);
        thrift.I32(4, Rle);
        thrift.EndStruct();
        thrift.EndStruct();
        output.Write(header.WrittenSpan);
        output.Write(compressed.AsSpan(0, compressedSize));
        return new ChunkInfo(field, rows, header.WrittenCount + body.WrittenCount, header.WrittenCount + compressedSize, stats.Nulls, stats.Min, stats.Max);
    }

    /// <summary>RLE/bit-packed hybrid with bit width 1: one run when every row is alike, else every row bit-packed.</summary>
    private static void DefinitionLevels(ArrayBufferWriter<byte> body, byte[] defined, int rows, int present)
    {
        if (present == rows || present == 0)
        {
            ThriftCompactWriter.Varint(body, (ulong)rows << 1);
            body.GetSpan(1)[0] = present == 0 ? (byte)0 : (byte)1;
            body.Advance(1);
            return;
        }

        var groups = (rows + 7) / 8;
        ThriftCompactWriter.Varint(body, ((ulong)groups << 1) | 1);
        body.Write(defined.AsSpan(0, groups));
    }

    private static void Strings(string?[] column, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        var range = new TextRange();
        for (var i = 0; i < rows; i++)
        {
            var v = column[i];
            if (v is null) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            var at = values.WrittenCount + 4;
            var span = values.GetSpan(4 + Encoding.UTF8.GetMaxByteCount(v.Length));
            var n = Encoding.UTF8.GetBytes(v, span[4..]);
            BinaryPrimitives.WriteInt32LittleEndian(span, n);
            values.Advance(4 + n);
            range.Add(values.WrittenSpan, at, n);
        }

        range.SetStats(values.WrittenSpan, ref stats);
    }

    /// <summary>
    /// DECIMAL on FIXED_LEN_BYTE_ARRAY, PLAIN: each value's unscaled digits as a big-endian two's complement of
    /// <see cref="DecimalBytes"/> bytes. No min/max: they would need comparing as numbers, and a table of exact numbers
    /// is rarely filtered by them. A NaN has no DECIMAL form: the lake sink refuses such rows before they get here.
    /// </summary>
    private static void Decimals(string?[] column, int rows, FieldSpec field, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        var width = DecimalBytes(field.Precision);
        Span<byte> full = stackalloc byte[16];
        for (var i = 0; i < rows; i++)
        {
            var v = column[i];
            if (v is null) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            var unscaled = DecimalText.Unscaled(v, field.Scale);
            BinaryPrimitives.WriteInt128BigEndian(full, unscaled);
            values.Write(full[(16 - width)..]);
        }
    }

    private static void Texts(Utf8Column column, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        var range = new TextRange();
        for (var i = 0; i < column.Count; i++)
        {
            if (column.IsNull(i)) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            var value = column.Value(i);
            var at = values.WrittenCount + 4;
            var span = values.GetSpan(4 + value.Length);
            BinaryPrimitives.WriteInt32LittleEndian(span, value.Length);
            value.CopyTo(span[4..]);
            values.Advance(4 + value.Length);
            range.Add(values.WrittenSpan, at, value.Length);
        }

        range.SetStats(values.WrittenSpan, ref stats);
    }

    /// <summary>
    /// The smallest and largest text of a chunk, as where they are in the encoded values: no copy per new minimum or
    /// maximum. Parquet orders UTF-8 as unsigned bytes, which is what span comparison does.
    /// </summary>
    private struct TextRange
    {
        private int _minAt, _minLength, _maxAt, _maxLength;
        private bool _any, _inexact;

        public void Add(ReadOnlySpan<byte> written, int at, int n)
        {
            if (_inexact) { return; }
            if (n > MaxStatBytes) { _inexact = true; return; }
            if (!_any)
            {
                (_minAt, _minLength, _maxAt, _maxLength, _any) = (at, n, at, n, true);
                return;
            }

            // Most values are neither a new minimum nor a new maximum, and a first byte strictly between theirs already
            // says so without a comparison.
            var first = n > 0 ? written[at] : -1;
            var minFirst = _minLength > 0 ? written[_minAt] : -1;
            var maxFirst = _maxLength > 0 ? written[_maxAt] : -1;
            var utf8 = written.Slice(at, n);
            if (first <= minFirst && utf8.SequenceCompareTo(written.Slice(_minAt, _minLength)) < 0) { (_minAt, _minLength) = (at, n); }
            if (first >= maxFirst && utf8.SequenceCompareTo(written.Slice(_maxAt, _maxLength)) > 0) { (_maxAt, _maxLength) = (at, n); }
        }

        public readonly void SetStats(ReadOnlySpan<byte> written, ref Stats stats)
        {
            if (_inexact || !_any) { return; }
            stats.Min = written.Slice(_minAt, _minLength).ToArray();
            stats.Max = written.Slice(_maxAt, _maxLength).ToArray();
        }
    }

    private static void Longs(long?[] column, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        long min = long.MaxValue, max = long.MinValue;
        for (var i = 0; i < rows; i++)
        {
            if (column[i] is not { } v) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            BinaryPrimitives.WriteInt64LittleEndian(values.GetSpan(8), v);
            values.Advance(8);
            if (v < min) { min = v; }
            if (v > max) { max = v; }
        }

        stats.SetInt64(min, max, rows);
    }

    private static void Timestamps(DateTime?[] column, string?[]? verbatim, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        long min = long.MaxValue, max = long.MinValue;
        for (var i = 0; i < rows; i++)
        {
            long v;
            if (column[i] is { } t)
            {
                // UTC milliseconds since the epoch, rounded down (an instant before 1970 stays before its millisecond).
                v = Math.DivRem(t.Ticks - EpochTicks, TimeSpan.TicksPerMillisecond, out var rest) - (rest < 0 ? 1 : 0);
            }
            else if (verbatim?[i] is { } text)
            {
                v = VerbatimTime.TryEpochMillis(text, out var far) ? far : throw new InvalidOperationException($"'{text}' has no Parquet timestamp (the lake sink refuses it before)");
            }
            else { stats.Nulls++; continue; }

            defined[i >> 3] |= (byte)(1 << (i & 7));
            BinaryPrimitives.WriteInt64LittleEndian(values.GetSpan(8), v);
            values.Advance(8);
            if (v < min) { min = v; }
            if (v > max) { max = v; }
        }

        stats.SetInt64(min, max, rows);
    }

    private static void Doubles(double?[] column, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        var exact = true;
        for (var i = 0; i < rows; i++)
        {
            if (column[i] is not { } v) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            BinaryPrimitives.WriteDoubleLittleEndian(values.GetSpan(8), v);
            values.Advance(8);
            if (double.IsNaN(v)) { exact = false; }
            if (v < min) { min = v; }
            if (v > max) { max = v; }
        }

        // Readers disagree on how NaN orders: a chunk with one goes without min/max.
        if (exact && stats.Nulls < rows)
        {
            stats.Min = BitConverter.GetBytes(min == 0 ? -0.0 : min);
            stats.Max = BitConverter.GetBytes(max == 0 ? 0.0 : max);
        }
    }

    private static void Booleans(bool?[] column, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        var packed = new byte[(rows + 7) / 8];
        var n = 0;
        bool any = false, all = true;
        for (var i = 0; i < rows; i++)
        {
            if (column[i] is not { } v) { stats.Nulls++; continue; }
            defined[i >> 3] |= (byte)(1 << (i & 7));
            if (v) { packed[n >> 3] |= (byte)(1 << (n & 7)); }
            any |= v;
            all &= v;
            n++;
        }

        values.Write(packed.AsSpan(0, (n + 7) / 8));
        if (n > 0)
        {
            stats.Min = [all ? (byte)1 : (byte)0];
            stats.Max = [any ? (byte)1 : (byte)0];
        }
    }

    private static void Dates(DateOnly?[] column, string?[]? verbatim, int rows, ArrayBufferWriter<byte> values, byte[] defined, ref Stats stats)
    {
        int min = int.MaxValue, max = int.MinValue;
        for (var i = 0; i < rows; i++)
        {
            int v;
            if (column[i] is { } d) { v = d.DayNumber - EpochDay; }
            else if (verbatim?[i] is { } text)
            {
                v = VerbatimTime.TryEpochDays(text, out var far) && far is > int.MinValue and < int.MaxValue ? (int)far : throw new InvalidOperationException($"'{text}' has no Parquet date (the lake sink refuses it before)");
            }
            else { stats.Nulls++; continue; }

            defined[i >> 3] |= (byte)(1 << (i & 7));
            BinaryPrimitives.WriteInt32LittleEndian(values.GetSpan(4), v);
            values.Advance(4);
            if (v < min) { min = v; }
            if (v > max) { max = v; }
        }

        if (stats.Nulls < rows)
        {
            stats.Min = BitConverter.GetBytes(min);
            stats.Max = BitConverter.GetBytes(max);
        }
    }

    /// <summary>
    /// Buffers one column is encoded in, taken for one column at a time and given back: a few sets serve every writer
    /// (at most <see cref="Kept"/> are kept), and a set a huge column grew is not kept.
    /// </summary>
    private sealed class Scratch
    {
        private const int KeepBytes = 8 << 20;
        private const int Kept = 4;
        private static readonly System.Collections.Concurrent.ConcurrentQueue<Scratch> Pool = new();

        private byte[] _defined = [];
        private byte[] _compressed = [];

        public static Scratch Take() => Pool.TryDequeue(out var scratch) ? scratch : new Scratch();

        public ArrayBufferWriter<byte> Values { get; private set; } = new(1 << 16);

        public ArrayBufferWriter<byte> Body { get; private set; } = new(1 << 16);

        public ArrayBufferWriter<byte> Header { get; } = new(256);

        public byte[] Defined(int rows)
        {
            var length = (rows + 7) / 8;
            if (_defined.Length < length) { _defined = new byte[Math.Max(length, 1024)]; }
            Array.Clear(_defined, 0, length);
            return _defined;
        }

        public byte[] Compressed(int bytes)
        {
            if (_compressed.Length < bytes) { _compressed = new byte[bytes]; }
            return _compressed;
        }

        public void Release()
        {
            Values.ResetWrittenCount();
            Body.ResetWrittenCount();
            Header.ResetWrittenCount();
            if (Values.Capacity > KeepBytes) { Values = new ArrayBufferWriter<byte>(1 << 16); }
            if (Body.Capacity > KeepBytes) { Body = new ArrayBufferWriter<byte>(1 << 16); }
            if (_compressed.Length > KeepBytes) { _compressed = []; }
            if (_defined.Length > KeepBytes) { _defined = []; }
            if (Pool.Count < Kept) { Pool.Enqueue(this); }
        }
    }

    private struct Stats
    {
        public long Nulls;
        public byte[]? Min;
        public byte[]? Max;

        public void SetInt64(long min, long max, int rows)
        {
            if (Nulls < rows)
            {
                Min = BitConverter.GetBytes(min);
                Max = BitConverter.GetBytes(max);
            }
        }
    }
}

/// <summary>What the footer says of a column chunk written by <see cref="ParquetColumnChunk.Write"/> (offsets are set when it is placed in the file).</summary>
internal sealed record ChunkInfo(FieldSpec Field, int Values, long UncompressedSize, long CompressedSize, long Nulls, byte[]? Min, byte[]? Max)
{
    public long Offset { get; set; }
}
