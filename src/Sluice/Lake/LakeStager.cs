using System.Globalization;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// Collects the Parquet files of one unit of work (a dropped file, a job's output) under its own staging folder.
/// Nothing here is visible to queries until <see cref="LakeStore.Commit"/>; <see cref="Dispose"/> removes what was not committed.
/// </summary>
public sealed class LakeStager : IDisposable
{
    private readonly List<StagedFile> _files = [];
    private int _sequence;

    internal LakeStager(string folder, string transactionId)
    {
        Folder = folder;
        TransactionId = transactionId;
        Directory.CreateDirectory(folder);
    }

    public string TransactionId { get; }

    public string Folder { get; }

    public IReadOnlyList<StagedFile> Files => _files;

    public long Rows => _files.Sum(f => f.Rows);

    /// <summary>Writes a batch, one file per partition value found in it. <paramref name="partitionOf"/> gives each row's value.</summary>
    public async Task AddAsync(LakeTable table, ColumnBatch batch, Func<int, string> partitionOf, CancellationToken ct)
    {
        if (batch.Count == 0)
        {
            return;
        }

        var groups = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var row = 0; row < batch.Count; row++)
        {
            var key = partitionOf(row);
            if (!groups.TryGetValue(key, out var rows))
            {
                groups[key] = rows = [];
            }

            rows.Add(row);
        }

        foreach (var (value, rows) in groups)
        {
            await AddPartitionAsync(table, value, groups.Count == 1 ? batch : batch.Gather(rows.ToArray()), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Writes columns that all belong to one partition.</summary>
    public Task AddPartitionAsync(LakeTable table, string partitionValue, IReadOnlyList<Array> columns, long rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        return AddPartitionAsync(table, partitionValue, new ColumnBatch(table.Schema, [.. columns], checked((int)rows)), ct);
    }

    /// <summary>Writes a batch whose rows all belong to one partition (its UTF-8 text as it is).</summary>
    public async Task AddPartitionAsync(LakeTable table, string partitionValue, ColumnBatch rows, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(rows);
        var path = NextPath();
        await ParquetFileWriter.WriteAsync(path, table.Columns, rows, ct).ConfigureAwait(false);
        _files.Add(new StagedFile(table, partitionValue, path, rows.Count));
    }

    /// <summary>A fresh file name inside this stager's folder.</summary>
    public string NextPath() => Path.Combine(Folder, string.Create(CultureInfo.InvariantCulture, $"{Interlocked.Increment(ref _sequence):D6}.parquet"));

    /// <summary>Adopts a complete, durable Parquet file written into this stager's folder by someone else (a partitioned writer, DuckDB's COPY).</summary>
    public void AddWritten(LakeTable table, string partitionValue, string path, long rows) =>
        _files.Add(new StagedFile(table, partitionValue, path, rows));

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Folder))
            {
                Directory.Delete(Folder, recursive: true);
            }
        }
        catch (IOException)
        {
            // Left-over staging folders are swept at the next start; failing here must not hide the real error.
        }
    }
}
