using System.Buffers;
using System.Text;

namespace Sluice.Lake.Parquet;

/// <summary>
/// The Thrift compact protocol, write side only, as Parquet's page headers and file footer use it: field headers with
/// id deltas, zigzag varints, binaries, lists and nested structs. Only what those structures need.
/// </summary>
internal sealed class ThriftCompactWriter(IBufferWriter<byte> output)
{
    private const byte BoolTrue = 1;
    private const byte BoolFalse = 2;
    public const byte I32Type = 5;
    public const byte I64Type = 6;
    public const byte BinaryType = 8;
    private const byte ListType = 9;
    public const byte StructType = 12;

    private readonly Stack<short> _outer = new();
    private short _last;

    /// <summary>Starts a struct: a list element, or the top-level one (fields of a struct number from zero again).</summary>
    public void BeginStruct()
    {
        _outer.Push(_last);
        _last = 0;
    }

    public void EndStruct()
    {
        Byte(0);
        _last = _outer.Pop();
    }

    public void I32(short id, int value)
    {
        Field(id, I32Type);
        Varint(ZigZag(value));
    }

    public void I64(short id, long value)
    {
        Field(id, I64Type);
        Varint(ZigZag(value));
    }

    public void Bool(short id, bool value) => Field(id, value ? BoolTrue : BoolFalse);

    public void Binary(short id, ReadOnlySpan<byte> value)
    {
        Field(id, BinaryType);
        Bytes(value);
    }

    public void String(short id, string value) => Binary(id, Encoding.UTF8.GetBytes(value));

    /// <summary>A struct-typed field: its fields follow, then <see cref="EndStruct"/>.</summary>
    public void Struct(short id)
    {
        Field(id, StructType);
        BeginStruct();
    }

    /// <summary>A list-typed field of <paramref name="count"/> elements of <paramref name="elementType"/>; the elements follow.</summary>
    public void List(short id, byte elementType, int count)
    {
        Field(id, ListType);
        if (count < 15)
        {
            Byte((byte)((count << 4) | elementType));
        }
        else
        {
            Byte((byte)(0xF0 | elementType));
            Varint((ulong)count);
        }
    }

    public void I32Element(int value) => Varint(ZigZag(value));

    public void StringElement(string value) => Bytes(Encoding.UTF8.GetBytes(value));

    private void Field(short id, byte type)
    {
        var delta = id - _last;
        if (delta is > 0 and <= 15)
        {
            Byte((byte)((delta << 4) | type));
        }
        else
        {
            Byte(type);
            Varint(ZigZag(id));
        }

        _last = id;
    }

    private void Bytes(ReadOnlySpan<byte> value)
    {
        Varint((ulong)value.Length);
        output.Write(value);
    }

    private void Byte(byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    private void Varint(ulong value) => Varint(output, value);

    /// <summary>An unsigned LEB128 varint, as Thrift and Parquet's RLE/bit-packed run headers write them.</summary>
    public static void Varint(IBufferWriter<byte> output, ulong value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(10);
        var n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[n++] = (byte)value;
        output.Advance(n);
    }

    private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));
}
