using System.Buffers;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>
/// Reads a file through one pooled buffer (1 MiB, grown only for a single record larger than that, up to
/// <see cref="MaxRecordBytes"/>), so memory stays bounded whatever the file size. Subclasses scan each filled buffer
/// and say how many bytes they are done with; full batches are handed to <c>emit</c>, which applies backpressure.
/// </summary>
internal abstract class ChunkedRecordReader : IRecordFileReader
{
    public const int InitialBuffer = 1 << 20;
    public const int MaxRecordBytes = 64 << 20;

    protected LineCounter Lines { get; } = new();

    /// <summary>Processes what it can of <paramref name="data"/>; returns the bytes it no longer needs.</summary>
    protected abstract int Scan(ReadOnlySpan<byte> data, bool final, IngestRun run);

    /// <summary>Called once the whole input was scanned (not after a stop): the place to report a cut-off document.</summary>
    protected virtual void Complete(IngestRun run) { }

    public async Task ReadAsync(Stream stream, IngestRun run, Func<ColumnBatch, CancellationToken, ValueTask> emit, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBuffer);
        try
        {
            var length = 0;
            var final = false;
            while (true)
            {
                while (!final && length < buffer.Length)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                    if (n == 0) { final = true; }
                    else { length += n; }
                }

                var consumed = Scan(buffer.AsSpan(0, length), final, run);
                if (run.BatchFull && !run.StopReading)
                {
                    await emit(run.Flush(), ct).ConfigureAwait(false);
                }

                if (run.StopReading)
                {
                    return;
                }

                if (final)
                {
                    Complete(run);
                    break;
                }

                Lines.Shift(buffer, consumed);
                Buffer.BlockCopy(buffer, consumed, buffer, 0, length - consumed);
                length -= consumed;
                if (length == buffer.Length)
                {
                    if (buffer.Length >= MaxRecordBytes)
                    {
                        run.Fail(Lines.LineAt(buffer, 0), run.Records + 1, $"a single record is larger than {MaxRecordBytes >> 20} MiB, the limit");
                        return;
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    Buffer.BlockCopy(buffer, 0, bigger, 0, length);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
            }

            if (!run.StopReading && run.Builder.Count > 0)
            {
                await emit(run.Flush(), ct).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
