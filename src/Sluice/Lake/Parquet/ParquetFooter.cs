using System.Buffers;
using Sluice.Core.Schema;

namespace Sluice.Lake.Parquet;

/// <summary>The file footer (parquet.thrift <c>FileMetaData</c>): a flat schema of optional columns and the row groups' column chunks.</summary>
internal static class ParquetFooter
{
    /// <summary>Converted types (parquet.thrift <c>ConvertedType</c>), for readers that predate logical types.</summary>
    private const int Utf8 = 0, DecimalConverted = 5, Date = 6, TimestampMillis = 9;

    private const int Optional = 1, Snappy = 1;

    public static void Write(IBufferWriter<byte> output, IReadOnlyList<FieldSpec> fields, IReadOnlyList<(long Rows, List<ChunkInfo> Chunks)> groups, long rows)
    {
        var t = new ThriftCompactWriter(output);
        t.BeginStruct();
        t.I32(1, 1); // version
        t.List(2, ThriftCompactWriter.StructType, fields.Count + 1);
        t.BeginStruct();
        t.String(4, "schema");
        t.I32(5, fields.Count);
        t.EndStruct();
        foreach (var field in fields)
        {
            SchemaElement(t, field);
        }

        t.I64(3, rows);
        t.List(4, ThriftCompactWriter.StructType, groups.Count);
        foreach (var (groupRows, chunks) in groups)
        {
            t.BeginStruct();
            t.List(1, ThriftCompactWriter.StructType, chunks.Count);
            foreach (var chunk in chunks)
            {
                ColumnChunk(t, chunk);
            }

            t.I64(2, chunks.Sum(c => c.UncompressedSize));
            t.I64(3, groupRows);
            t.EndStruct();
        }

        t.String(6, "sluice");
        t.EndStruct();
    }

    private static void SchemaElement(ThriftCompactWriter t, FieldSpec field)
    {
        t.BeginStruct();
        t.I32(1, ParquetColumnChunk.PhysicalType(field));
        if (field.IsDecimal128()) { t.I32(2, ParquetColumnChunk.DecimalBytes(field.Precision)); }
        t.I32(3, Optional);
        t.String(4, field.Name);
        switch (field.Type)
        {
            case FieldType.Decimal when field.IsDecimal128():
                t.I32(6, DecimalConverted);
                t.I32(7, field.Scale);
                t.I32(8, field.Precision);
                t.Struct(10);
                t.Struct(5); // DECIMAL
                t.I32(1, field.Scale);
                t.I32(2, field.Precision);
                t.EndStruct();
                t.EndStruct();
                break;
            case FieldType.String or FieldType.Decimal:
                t.I32(6, Utf8);
                t.Struct(10);
                t.Struct(1); // STRING
                t.EndStruct();
                t.EndStruct();
                break;
            case FieldType.Date:
                t.I32(6, Date);
                t.Struct(10);
                t.Struct(6); // DATE
                t.EndStruct();
                t.EndStruct();
                break;
            case FieldType.Timestamp:
                t.I32(6, TimestampMillis);
                t.Struct(10);
                t.Struct(8); // TIMESTAMP
                t.Bool(1, true); // isAdjustedToUTC
                t.Struct(2); // unit
                t.Struct(1); // MILLIS
                t.EndStruct();
                t.EndStruct();
                t.EndStruct();
                t.EndStruct();
                break;
            case FieldType.Integer or FieldType.Double or FieldType.Boolean:
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(field));
        }

        t.EndStruct();
    }

    private static void ColumnChunk(ThriftCompactWriter t, ChunkInfo chunk)
    {
        t.BeginStruct();
        t.I64(2, chunk.Offset); // file_offset
        t.Struct(3); // meta_data
        t.I32(1, ParquetColumnChunk.PhysicalType(chunk.Field));
        t.List(2, ThriftCompactWriter.I32Type, 2);
        t.I32Element(ParquetColumnChunk.Plain);
        t.I32Element(ParquetColumnChunk.Rle);
        t.List(3, ThriftCompactWriter.BinaryType, 1);
        t.StringElement(chunk.Field.Name);
        t.I32(4, Snappy);
        t.I64(5, chunk.Values);
        t.I64(6, chunk.UncompressedSize);
        t.I64(7, chunk.CompressedSize);
        t.I64(9, chunk.Offset); // data_page_offset
        t.Struct(12); // statistics
        t.I64(3, chunk.Nulls);
        if (chunk.Max is { } max) { t.Binary(5, max); }
        if (chunk.Min is { } min) { t.Binary(6, min); }
        t.EndStruct();
        t.EndStruct();
        t.EndStruct();
    }
}
