using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// Encodes a batch as ClickHouse's RowBinary: fixed-width little-endian numbers, length-prefixed strings, a null flag
/// before each value of a Nullable column. ClickHouse reads it with far less work than JSON, and so do we to write it.
/// The column types must be exactly those the sink declares (<see cref="ClickHouseSink.TypeOf"/>): RowBinary carries
/// no type, so the sink checks the table's types before the first insert.
/// </summary>
internal static class ClickHouseRowBinary
{
    /// <summary>One column's writer: appends the value of a row.</summary>
    private delegate void ValueWriter(ArrayBufferWriter<byte> output, int row);

    /// <param name="notNull">Per column: stored non-nullable (a missing value is written as the type's zero).</param>
    /// <param name="unsigned">Per column: the UInt64 version column.</param>
    /// <param name="exactTimes">Timestamps and dates as a mirror stores them (<see cref="ClickHouseExactTime"/>), not as DateTime and Date.</param>
    public static ArrayBufferWriter<byte> Encode(ColumnBatch table, IReadOnlyList<bool> notNull, IReadOnlyList<bool> unsigned, bool exactTimes = false)
    {
        ArgumentNullException.ThrowIfNull(table);
        var output = new ArrayBufferWriter<byte>(Math.Max(256, table.Count * 96));
        var writers = new ValueWriter[table.Columns.Count];
        for (var c = 0; c < writers.Length; c++)
        {
            var field = table.Schema.Fields[c];
            writers[c] = field.IsDecimal128() ? DecimalWriter(table.Strings(c), field, notNull[c])
                : exactTimes && ExactTimeWriter(table.Columns[c], table.Verbatim(c), notNull[c]) is { } exact ? exact
                : WriterOf(table.Columns[c], field.Type, notNull[c], unsigned[c]);
        }

        for (var row = 0; row < table.Count; row++)
        {
            foreach (var write in writers) { write(output, row); }
        }

        return output;
    }

    private static ValueWriter WriterOf(Array column, FieldType type, bool notNull, bool unsigned) => column switch
    {
        long?[] a when unsigned => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Fixed(o, (ulong)(a[r] ?? 0)); } },
        long?[] a => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Fixed(o, a[r] ?? 0); } },
        // Float64 holds NaN and the infinities: written as they are.
        double?[] a => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Fixed(o, a[r] ?? 0d); } },
        bool?[] a => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Byte(o, a[r] == true ? (byte)1 : (byte)0); } },
        DateTime?[] a => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Fixed(o, Seconds(a[r])); } },
        DateOnly?[] a => (o, r) => { if (Present(o, a[r].HasValue, notNull)) { Fixed(o, Days(a[r])); } },
        string?[] a => (o, r) => { if (Present(o, a[r] is not null, notNull)) { Text(o, a[r] ?? ""); } },
        _ when type == FieldType.String => (o, r) =>
        {
            var value = column.GetValue(r);
            if (Present(o, value is not null, notNull)) { Text(o, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""); }
        },
        _ => throw new InvalidOperationException($"clickhouse: no RowBinary encoding for a {column.GetType().Name} column of type {type.Name()}"),
    };

    /// <summary>
    /// Int64 microseconds or Int32 days, from the typed value or the Postgres text beside it. The sink refuses a row
    /// whose value converts to neither before encoding (<c>Unholdable</c>), so none is written as zero here.
    /// </summary>
    private static ValueWriter? ExactTimeWriter(Array column, string?[]? verbatim, bool notNull) => column switch
    {
        DateTime?[] a => (o, r) =>
        {
            var held = ClickHouseExactTime.TryMicros(a[r], verbatim?[r], out var micros);
            if (Present(o, held, notNull)) { Fixed(o, micros); }
        },
        DateOnly?[] a => (o, r) =>
        {
            var held = ClickHouseExactTime.TryDays(a[r], verbatim?[r], out var days);
            if (Present(o, held, notNull)) { BinaryPrimitives.WriteInt32LittleEndian(o.GetSpan(4), days); o.Advance(4); }
        },
        _ => null,
    };

    /// <summary>The first second a ClickHouse DateTime cannot hold (UInt32 seconds since 1970).</summary>
    public static readonly DateTime DateTimeEnd = DateTime.UnixEpoch.AddSeconds(uint.MaxValue + 1L);

    /// <summary>The last day a ClickHouse Date holds (UInt16 days since 1970).</summary>
    public static readonly DateOnly DateEnd = DateOnly.FromDateTime(DateTime.UnixEpoch).AddDays(ushort.MaxValue);

    /// <summary>
    /// Decimal(P, S) is its unscaled value (the digits without the point) as a little-endian Int32, Int64 or Int128 for P up
    /// to 9, 18 and 38.
    /// </summary>
    private static ValueWriter DecimalWriter(string?[] column, FieldSpec field, bool notNull) => (o, r) =>
    {
        if (!Present(o, column[r] is not null, notNull)) { return; }
        var unscaled = DecimalText.Unscaled(column[r] ?? "0", field.Scale);
        if (field.Precision <= 9) { BinaryPrimitives.WriteInt32LittleEndian(o.GetSpan(4), checked((int)unscaled)); o.Advance(4); }
        else if (field.Precision <= 18) { Fixed(o, checked((long)unscaled)); }
        else { BinaryPrimitives.WriteInt128LittleEndian(o.GetSpan(16), unscaled); o.Advance(16); }
    };

    /// <summary>Writes a Nullable column's flag; true when the value follows (always for a non-nullable column).</summary>
    private static bool Present(ArrayBufferWriter<byte> output, bool hasValue, bool notNull)
    {
        if (notNull) { return true; }
        Byte(output, hasValue ? (byte)0 : (byte)1);
        return hasValue;
    }

    /// <summary>DateTime is UInt32 seconds since 1970 (UTC): values outside its range are clamped to its ends.</summary>
    private static uint Seconds(DateTime? value)
    {
        if (value is not { } t) { return 0; }
        var seconds = (t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : t).Ticks / TimeSpan.TicksPerSecond - DateTime.UnixEpoch.Ticks / TimeSpan.TicksPerSecond;
        return (uint)Math.Clamp(seconds, 0, uint.MaxValue);
    }

    /// <summary>Date is UInt16 days since 1970-01-01, clamped likewise.</summary>
    private static ushort Days(DateOnly? value) =>
        value is { } d ? (ushort)Math.Clamp(d.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber, 0, ushort.MaxValue) : (ushort)0;

    private static void Byte(ArrayBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    private static void Fixed(ArrayBufferWriter<byte> output, long value) { BinaryPrimitives.WriteInt64LittleEndian(output.GetSpan(8), value); output.Advance(8); }

    private static void Fixed(ArrayBufferWriter<byte> output, ulong value) { BinaryPrimitives.WriteUInt64LittleEndian(output.GetSpan(8), value); output.Advance(8); }

    private static void Fixed(ArrayBufferWriter<byte> output, double value) { BinaryPrimitives.WriteDoubleLittleEndian(output.GetSpan(8), value); output.Advance(8); }

    private static void Fixed(ArrayBufferWriter<byte> output, uint value) { BinaryPrimitives.WriteUInt32LittleEndian(output.GetSpan(4), value); output.Advance(4); }

    private static void Fixed(ArrayBufferWriter<byte> output, ushort value) { BinaryPrimitives.WriteUInt16LittleEndian(output.GetSpan(2), value); output.Advance(2); }

    /// <summary>A String: its UTF-8 length as a LEB128 varint, then the bytes.</summary>
    private static void Text(ArrayBufferWriter<byte> output, string value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        var span = output.GetSpan(length + 5);
        var at = 0;
        var rest = (uint)length;
        while (rest >= 0x80)
        {
            span[at++] = (byte)(rest | 0x80);
            rest >>= 7;
        }

        span[at++] = (byte)rest;
        at += Encoding.UTF8.GetBytes(value, span[at..]);
        output.Advance(at);
    }
}
