using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>One event as read back from the landing log.</summary>
/// <param name="Offset">Where the record starts in the stream's log: unique per event, and the row's <c>_offset</c>.</param>
/// <param name="End">Where the next record starts: the position a pipeline batch ending here reports.</param>
public readonly record struct LandedEvent(long Offset, long End, ulong KeyHash, long ReceivedMs, string Tenant, ReadOnlyMemory<byte> Json);

/// <summary>
/// The landing log's record: <c>[u32 size][u32 crc32 of the rest][u64 dedup key hash][i64 arrival, Unix ms][u16 tenant
/// length][tenant UTF-8][event JSON as received]</c>, little-endian. The checksum finds a torn tail after a crash; the
/// key hash lets the dedup index be rebuilt from the log alone. A padding record (<see cref="WritePadding"/>) holds no event:
/// <c>sluice landing repair</c> puts it where bytes were unreadable, so every other record keeps its offset.
/// </summary>
public static class LandingRecord
{
    public const int HeaderSize = 4 + 4 + 8 + 8 + 2;

    public static int Size(int tenantBytes, int jsonBytes) => HeaderSize + tenantBytes + jsonBytes;

    public static void Write(Span<byte> dest, ulong keyHash, long receivedMs, ReadOnlySpan<byte> tenant, ReadOnlySpan<byte> json)
    {
        var size = Size(tenant.Length, json.Length);
        BinaryPrimitives.WriteInt32LittleEndian(dest, size);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[8..], keyHash);
        BinaryPrimitives.WriteInt64LittleEndian(dest[16..], receivedMs);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[24..], (ushort)tenant.Length);
        tenant.CopyTo(dest[HeaderSize..]);
        json.CopyTo(dest[(HeaderSize + tenant.Length)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[4..], Crc32.HashToUInt32(dest[8..size]));
    }

    /// <summary>Reads the record at the start of <paramref name="data"/>: <see cref="ReadStatus.Incomplete"/> when more bytes are needed.</summary>
    public static ReadStatus TryRead(ReadOnlySpan<byte> data, out int size)
    {
        size = 0;
        if (data.Length < HeaderSize)
        {
            return ReadStatus.Incomplete;
        }

        size = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (size < HeaderSize || size > MaxRecordBytes)
        {
            return ReadStatus.Corrupt;
        }

        if (data.Length < size)
        {
            return ReadStatus.Incomplete;
        }

        var tenantLength = BinaryPrimitives.ReadUInt16LittleEndian(data[24..]);
        if ((HeaderSize + tenantLength > size && !IsPadding(data)) || Crc32.HashToUInt32(data[8..size]) != BinaryPrimitives.ReadUInt32LittleEndian(data[4..]))
        {
            return ReadStatus.Corrupt;
        }

        return ReadStatus.Ok;
    }

    /// <summary>Records are never larger than an event may be (64 MB at most) plus the header; anything larger is damage.</summary>
    public const int MaxRecordBytes = (64 << 20) + HeaderSize + ushort.MaxValue;

    /// <summary>Padding is marked by an impossible arrival time and tenant length (key hash 0: no dedup key).</summary>
    private const long PaddingMs = long.MinValue;

    /// <summary>Whether the record (or its header) is padding: skipped by readers, no event.</summary>
    public static bool IsPadding(ReadOnlySpan<byte> record) =>
        ReceivedMs(record) == PaddingMs && BinaryPrimitives.ReadUInt16LittleEndian(record[24..]) == ushort.MaxValue;

    /// <summary>Fills <paramref name="dest"/> (at least <see cref="HeaderSize"/>, at most <see cref="MaxRecordBytes"/> bytes) with one padding record.</summary>
    public static void WritePadding(Span<byte> dest)
    {
        if (dest.Length < HeaderSize || dest.Length > MaxRecordBytes) { throw new ArgumentOutOfRangeException(nameof(dest), dest.Length, "a padding record is between the header size and the largest record"); }
        dest.Clear();
        BinaryPrimitives.WriteInt32LittleEndian(dest, dest.Length);
        BinaryPrimitives.WriteInt64LittleEndian(dest[16..], PaddingMs);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[24..], ushort.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[4..], Crc32.HashToUInt32(dest[8..]));
    }

    public static ulong KeyHash(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadUInt64LittleEndian(record[8..]);

    public static long ReceivedMs(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record[16..]);

    public static LandedEvent Decode(ReadOnlyMemory<byte> record, long offset, Func<ReadOnlyMemory<byte>, string> tenantOf)
    {
        var span = record.Span;
        var size = BinaryPrimitives.ReadInt32LittleEndian(span);
        var tenantLength = BinaryPrimitives.ReadUInt16LittleEndian(span[24..]);
        return new LandedEvent(offset, offset + size, KeyHash(span), ReceivedMs(span), tenantOf(record.Slice(HeaderSize, tenantLength)),
            record[(HeaderSize + tenantLength)..size]);
    }

    public static string Utf8(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);
}

public enum ReadStatus
{
    Ok,
    Incomplete,
    Corrupt,
}
