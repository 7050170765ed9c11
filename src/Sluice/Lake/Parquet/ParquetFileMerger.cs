using System.Buffers;
using System.Buffers.Binary;
using Sluice.Core.Schema;

namespace Sluice.Lake.Parquet;

/// <summary>
/// Merges Parquet files that Sluice itself wrote (<see cref="ParquetFileWriter"/>) into one without decoding anything:
/// each input's column chunks are copied byte for byte and a new footer points at them, so the merged file holds the
/// same row groups, values and statistics. Compaction uses it for files whose row groups are already of a useful size
/// (under load the lake sink writes tens of thousands of rows at a time), where re-encoding every row would cost as
/// much CPU as writing it did; small row groups are still merged by DuckDB, which re-encodes them into large ones.
/// </summary>
internal static class ParquetFileMerger
{
    private const string Writer = "sluice";

    /// <summary>
    /// The row groups of <paramref name="path"/> when Sluice wrote it with exactly <paramref name="fields"/> (same names,
    /// types and order); null for any other file, which the caller then merges another way.
    /// </summary>
    public static SluiceFileLayout? TryRead(string path, IReadOnlyList<FieldSpec> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        if (stream.Length < 12) { return null; }
        Span<byte> tail = stackalloc byte[8];
        stream.Position = stream.Length - 8;
        stream.ReadExactly(tail);
        if (!tail[4..].SequenceEqual("PAR1"u8)) { return null; }
        var length = BinaryPrimitives.ReadInt32LittleEndian(tail);
        if (length <= 0 || length > stream.Length - 12) { return null; }
        var footer = new byte[length];
        stream.Position = stream.Length - 8 - length;
        stream.ReadExactly(footer);
        try
        {
            return Parse(footer, fields);
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>Writes <paramref name="output"/> from whole row groups of <paramref name="inputs"/> (read by <see cref="TryRead"/>), fsynced; returns its rows.</summary>
    public static long Merge(IReadOnlyList<(string Path, SluiceFileLayout Layout)> inputs, IReadOnlyList<FieldSpec> fields, string output)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var groups = new List<(long Rows, List<ChunkInfo> Chunks)>();
        long rows = 0;
        using (var target = new FileStream(output, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            target.Write("PAR1"u8);
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                foreach (var (path, layout) in inputs)
                {
                    using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
                    foreach (var (groupRows, chunks) in layout.Groups)
                    {
                        var placed = new List<ChunkInfo>(chunks.Count);
                        foreach (var chunk in chunks)
                        {
                            var at = target.Position;
                            source.Position = chunk.Offset;
                            for (var left = chunk.CompressedSize; left > 0;)
                            {
                                var n = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                                if (n == 0) { throw new InvalidDataException($"'{path}' ends inside a column chunk its footer names"); }
                                target.Write(buffer, 0, n);
                                left -= n;
                            }

                            placed.Add(chunk with { Offset = at });
                        }

                        groups.Add((groupRows, placed));
                        rows += groupRows;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            var footer = new ArrayBufferWriter<byte>(4096);
            ParquetFooter.Write(footer, fields, groups, rows);
            target.Write(footer.WrittenSpan);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, footer.WrittenCount);
            target.Write(length);
            target.Write("PAR1"u8);
            target.Flush(flushToDisk: true);
        }

        return rows;
    }

    private static SluiceFileLayout? Parse(ReadOnlySpan<byte> footer, IReadOnlyList<FieldSpec> fields)
    {
        var reader = new ThriftCompactReader(footer);
        var schema = new List<(string Name, FieldType? Type)>();
        var groups = new List<(long Rows, List<ChunkInfo> Chunks)>();
        string? createdBy = null;
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 2 when type == 9:
                    var (elements, _) = reader.List();
                    for (var i = 0; i < elements; i++) { schema.Add(SchemaElement(ref reader)); }
                    break;
                case 4 when type == 9:
                    var (count, _) = reader.List();
                    for (var i = 0; i < count; i++) { groups.Add(RowGroup(ref reader, fields)); }
                    break;
                case 6 when type == 8:
                    createdBy = reader.String();
                    break;
                default:
                    reader.Skip(type);
                    break;
            }
        }

        // The first element is the root; the rest must be this table's columns exactly.
        var same = createdBy == Writer && schema.Count == fields.Count + 1
            && fields.Select((f, i) => schema[i + 1].Name == f.Name && schema[i + 1].Type == f.Type).All(x => x)
            && groups.All(g => g.Chunks.Count == fields.Count);
        return same ? new SluiceFileLayout(groups) : null;
    }

    private static (string Name, FieldType? Type) SchemaElement(ref ThriftCompactReader reader)
    {
        int? physical = null, converted = null;
        var name = "";
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1: physical = reader.I32(); break;
                case 4: name = reader.String(); break;
                case 6: converted = reader.I32(); break;
                default: reader.Skip(type); break;
            }
        }

        FieldType? field = (physical, converted) switch
        {
            (ParquetColumnChunk.ByteArray, 0) => FieldType.String,
            (ParquetColumnChunk.Int64, 9) => FieldType.Timestamp,
            (ParquetColumnChunk.Int64, null) => FieldType.Integer,
            (ParquetColumnChunk.Double, null) => FieldType.Double,
            (ParquetColumnChunk.Boolean, null) => FieldType.Boolean,
            (ParquetColumnChunk.Int32, 6) => FieldType.Date,
            _ => null,
        };
        return (name, field);
    }

    private static (long Rows, List<ChunkInfo> Chunks) RowGroup(ref ThriftCompactReader reader, IReadOnlyList<FieldSpec> fields)
    {
        var chunks = new List<ChunkInfo>();
        long rows = 0;
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1 when type == 9:
                    var (count, _) = reader.List();
                    for (var i = 0; i < count; i++) { chunks.Add(ColumnChunk(ref reader, i < fields.Count ? fields[i] : fields[0])); }
                    break;
                case 3: rows = reader.I64(); break;
                default: reader.Skip(type); break;
            }
        }

        return (rows, chunks);
    }

    private static ChunkInfo ColumnChunk(ref ThriftCompactReader reader, FieldSpec field)
    {
        long values = 0, uncompressed = 0, compressed = 0, offset = -1, nulls = 0;
        byte[]? min = null, max = null;
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            if (id != 3 || type != ThriftCompactWriter.StructType) { reader.Skip(type); continue; }
            short inner = 0;
            while (reader.NextField(ref inner, out var m, out var mtype))
            {
                switch (m)
                {
                    case 5: values = reader.I64(); break;
                    case 6: uncompressed = reader.I64(); break;
                    case 7: compressed = reader.I64(); break;
                    case 9: offset = reader.I64(); break;
                    case 12 when mtype == ThriftCompactWriter.StructType:
                        short s = 0;
                        while (reader.NextField(ref s, out var st, out var stype))
                        {
                            switch (st)
                            {
                                case 3: nulls = reader.I64(); break;
                                case 5: max = reader.Binary().ToArray(); break;
                                case 6: min = reader.Binary().ToArray(); break;
                                default: reader.Skip(stype); break;
                            }
                        }

                        break;
                    default: reader.Skip(mtype); break;
                }
            }
        }

        if (offset < 0 || compressed <= 0) { throw new InvalidDataException("a column chunk without its data page offset or size"); }
        return new ChunkInfo(field, checked((int)values), uncompressed, compressed, nulls, min, max) { Offset = offset };
    }
}

/// <summary>The row groups of a file Sluice wrote, with where each column chunk lies in it.</summary>
internal sealed record SluiceFileLayout(IReadOnlyList<(long Rows, List<ChunkInfo> Chunks)> Groups)
{
    public long Rows => Groups.Sum(g => g.Rows);
}
