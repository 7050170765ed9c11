using System.Buffers.Binary;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>Reads a landing segment back record by record at start, checking every checksum (see <see cref="LandingLogRecovery"/>).</summary>
public static class SegmentScanner
{
    public static SegmentScan Scan(string path, long start)
    {
        var length = new FileInfo(path).Length;
        var (valid, fault) = ValidLength(path);
        var intactAfter = fault != SegmentFault.None && NextIntactRecord(path, valid + 1, length) is not null;
        return new SegmentScan(Path.GetFileName(path), start, length, valid, fault, intactAfter);
    }

    /// <summary>Bytes of whole, good records from the start of the file, and what stops there.</summary>
    private static (long Valid, SegmentFault Fault) ValidLength(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 20);
        var buffer = new byte[1 << 20];
        long valid = 0;
        var filled = 0;
        while (true)
        {
            var n = stream.Read(buffer, filled, buffer.Length - filled);
            filled += n;
            var at = 0;
            while (true)
            {
                var status = LandingRecord.TryRead(buffer.AsSpan(at, filled - at), out var size);
                if (status == ReadStatus.Ok)
                {
                    at += size;
                    valid += size;
                    continue;
                }

                if (status == ReadStatus.Corrupt)
                {
                    return (valid, SegmentFault.Checksum);
                }

                if (n == 0)
                {
                    return (valid, filled - at == 0 ? SegmentFault.None : SegmentFault.Truncated);
                }

                break;
            }

            Buffer.BlockCopy(buffer, at, buffer, 0, filled - at);
            filled -= at;
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, LandingRecord.MaxRecordBytes + 1));
            }
        }
    }

    /// <summary>
    /// Where the first whole record with a good checksum starts at or after <paramref name="from"/> (null: none). Only
    /// run where a segment has bad bytes, to tell a torn tail (nothing whole after it) from damage in the middle.
    /// </summary>
    public static long? NextIntactRecord(string path, long from, long length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var window = new byte[1 << 20];
        long windowStart = 0;
        var windowLength = 0;
        for (var p = from; p + LandingRecord.HeaderSize <= length; p++)
        {
            if (p + LandingRecord.HeaderSize > windowStart + windowLength)
            {
                windowStart = p;
                windowLength = Read(handle, window, p);
            }

            var size = BinaryPrimitives.ReadInt32LittleEndian(window.AsSpan((int)(p - windowStart)));
            if (size < LandingRecord.HeaderSize || size > LandingRecord.MaxRecordBytes || p + size > length)
            {
                continue;
            }

            // A plausible size is rare in bytes that are not a record header, so reading such a record on its own is cheap.
            var record = p + size <= windowStart + windowLength ? window.AsSpan((int)(p - windowStart), size) : ReadRecord(handle, p, size);
            if (LandingRecord.TryRead(record, out _) == ReadStatus.Ok)
            {
                return p;
            }
        }

        return null;
    }

    private static byte[] ReadRecord(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long at, int size)
    {
        var record = new byte[size];
        Read(handle, record, at);
        return record;
    }

    private static int Read(Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte[] buffer, long at)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(total), at + total);
            if (n == 0) { break; }
            total += n;
        }

        return total;
    }
}
