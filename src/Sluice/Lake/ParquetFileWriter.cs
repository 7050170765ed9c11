using System.Buffers;
using Sluice.Core.Schema;
using Sluice.Lake.Parquet;

namespace Sluice.Lake;

/// <summary>
/// One Parquet file being written, a row group per <see cref="WriteRowGroupAsync"/> call, every column optional, one
/// PLAIN-encoded, Snappy-compressed data page per column chunk with exact statistics (<see cref="ParquetColumnChunk"/>).
/// Timestamps are UTC-adjusted milliseconds, so DuckDB reads them as <c>TIMESTAMP WITH TIME ZONE</c>; dates are DATE.
/// Written by Sluice itself rather than a general library: the lake's flat tables need little of the format, and
/// encoding straight from the batch's arrays costs a fraction of the CPU and none of the per-value garbage (measured:
/// 0.3 against 1.8 us per e-commerce event). Compaction (DuckDB) rewrites small files with dictionaries later.
/// </summary>
internal sealed class ParquetFileWriter : IAsyncDisposable
{
    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    private readonly FileStream _stream;
    private readonly IReadOnlyList<FieldSpec> _fields;
    private readonly List<(long Rows, List<ChunkInfo> Chunks)> _groups = [];
    private bool _completed;

    private ParquetFileWriter(string path, FileStream stream, IReadOnlyList<FieldSpec> fields)
    {
        Path = path;
        _stream = stream;
        _fields = fields;
    }

    public string Path { get; }

    public long Rows { get; private set; }

    public static Task<ParquetFileWriter> CreateAsync(string path, IReadOnlyList<FieldSpec> fields, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ct.ThrowIfCancellationRequested();
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        try
        {
            stream.Write(Magic);
            return Task.FromResult(new ParquetFileWriter(path, stream, fields));
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Writes a whole file of one batch in one call (its columns in the order of <paramref name="fields"/>).</summary>
    public static async Task WriteAsync(string path, IReadOnlyList<FieldSpec> fields, ColumnBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var writer = await CreateAsync(path, fields, ct).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            await writer.WriteRowGroupAsync(batch, ct).ConfigureAwait(false);
            await writer.CompleteAsync(ct).ConfigureAwait(false);
        }
    }

    public Task WriteRowGroupAsync(IReadOnlyList<Array> columns, int rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(columns);
        return WriteRowGroupAsync(rows, (stream, i) => ParquetColumnChunk.Write(stream, _fields[i], columns[i], rows), ct);
    }

    /// <summary>A row group of one batch; its UTF-8 text columns are written as they are, without strings.</summary>
    public Task WriteRowGroupAsync(ColumnBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return WriteRowGroupAsync(batch.Count, (stream, i) => batch.Text(i) is { } text
            ? ParquetColumnChunk.Write(stream, _fields[i], text)
            : ParquetColumnChunk.Write(stream, _fields[i], batch.Columns[i], batch.Count, batch.Verbatim(i)), ct);
    }

    private Task WriteRowGroupAsync(int rows, Func<Stream, int, ChunkInfo> writeColumn, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (rows == 0)
        {
            return Task.CompletedTask;
        }

        var chunks = new List<ChunkInfo>(_fields.Count);
        for (var i = 0; i < _fields.Count; i++)
        {
            var offset = _stream.Position;
            var chunk = writeColumn(_stream, i);
            chunk.Offset = offset;
            chunks.Add(chunk);
        }

        _groups.Add((rows, chunks));
        Rows += rows;
        return Task.CompletedTask;
    }

    /// <summary>Writes the footer and forces the file to disk: the manifest may name it only once it is durable.</summary>
    public Task CompleteAsync(CancellationToken ct)
    {
        _completed = true;
        var footer = new ArrayBufferWriter<byte>(4096);
        ParquetFooter.Write(footer, _fields, _groups, Rows);
        _stream.Write(footer.WrittenSpan);
        Span<byte> length = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, footer.WrittenCount);
        _stream.Write(length);
        _stream.Write(Magic);
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        if (!_completed)
        {
            // Abandoned half-way: the file is incomplete and its stager deletes it.
            _completed = true;
            _stream.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
