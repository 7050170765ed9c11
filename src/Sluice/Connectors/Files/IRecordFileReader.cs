using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>Reads the records of one file into an <see cref="IngestRun"/>, handing full batches to <c>emit</c>.</summary>
internal interface IRecordFileReader
{
    Task ReadAsync(Stream stream, IngestRun run, Func<ColumnBatch, CancellationToken, ValueTask> emit, CancellationToken ct);
}

internal static class RecordFileReaders
{
    public static IRecordFileReader For(FileType type) => type.Format switch
    {
        FileFormat.Json => new JsonDocumentReader(),
        FileFormat.Ndjson => new NdjsonReader(),
        FileFormat.Csv => new CsvRecordReader(),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
