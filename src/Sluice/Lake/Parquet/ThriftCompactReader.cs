using System.Text;

namespace Sluice.Lake.Parquet;

/// <summary>
/// The Thrift compact protocol, read side, enough to walk a Parquet footer: field headers, varints, binaries, lists and
/// nested structs, and skipping any field a caller does not ask for. Malformed input throws <see cref="InvalidDataException"/>.
/// </summary>
internal ref struct ThriftCompactReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _at;

    /// <summary>The next field of the current struct (id, compact type), or false at its end. <paramref name="last"/> is the struct's previous field id.</summary>
    public bool NextField(ref short last, out short id, out byte type)
    {
        var header = Byte();
        if (header == 0)
        {
            id = 0;
            type = 0;
            return false;
        }

        type = (byte)(header & 0x0F);
        var delta = header >> 4;
        id = delta != 0 ? (short)(last + delta) : (short)UnZigZag(Varint());
        last = id;
        return true;
    }

    public int I32() => (int)UnZigZag(Varint());

    public long I64() => UnZigZag(Varint());

    public ReadOnlySpan<byte> Binary()
    {
        var length = checked((int)Varint());
        if (length < 0 || _at + length > _data.Length) { throw new InvalidDataException("a Thrift binary runs past the end of the footer"); }
        var value = _data.Slice(_at, length);
        _at += length;
        return value;
    }

    public string String() => Encoding.UTF8.GetString(Binary());

    /// <summary>A list header: how many elements of which compact type follow.</summary>
    public (int Count, byte ElementType) List()
    {
        var header = Byte();
        var count = header >> 4;
        if (count == 15) { count = checked((int)Varint()); }
        return (count, (byte)(header & 0x0F));
    }

    /// <summary>Skips one value of a compact type (a field's value or a list element).</summary>
    public void Skip(byte type)
    {
        switch (type)
        {
            case 1 or 2: break; // booleans live in the field header
            case 3: Byte(); break;
            case 4 or 5 or 6: Varint(); break;
            case 7: Advance(8); break;
            case 8: Binary(); break;
            case 9 or 10:
                var (count, element) = List();
                for (var i = 0; i < count; i++) { Skip(element == 2 ? (byte)3 : element); }
                break;
            case 11:
                var pairs = checked((int)Varint());
                if (pairs > 0)
                {
                    var kinds = Byte();
                    for (var i = 0; i < pairs; i++) { Skip((byte)(kinds >> 4)); Skip((byte)(kinds & 0x0F)); }
                }

                break;
            case 12:
                short last = 0;
                while (NextField(ref last, out _, out var inner)) { Skip(inner); }
                break;
            default:
                throw new InvalidDataException($"unknown Thrift compact type {type}");
        }
    }

    private byte Byte()
    {
        if (_at >= _data.Length) { throw new InvalidDataException("the footer ends in the middle of a Thrift value"); }
        return _data[_at++];
    }

    private void Advance(int bytes)
    {
        if (_at + bytes > _data.Length) { throw new InvalidDataException("the footer ends in the middle of a Thrift value"); }
        _at += bytes;
    }

    private ulong Varint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = Byte();
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) { return value; }
        }

        throw new InvalidDataException("a Thrift varint is longer than 10 bytes");
    }

    private static long UnZigZag(ulong value) => (long)(value >> 1) ^ -(long)(value & 1);
}
