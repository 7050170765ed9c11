using System.Globalization;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// Writes the rows of one unit of work into a lake table, one staged Parquet file per partition, rows grouped by the
/// date in <c>partitionColumn</c>. Rows are held per partition until a row group's worth (<see cref="RowGroupRows"/>)
/// is there; across all partitions at most <see cref="MaxBufferedRows"/> rows wait, and at most
/// <see cref="MaxOpenFiles"/> files are open (the least recently used is closed, a later row opens a new file).
/// </summary>
public sealed class PartitionedParquetWriter : IAsyncDisposable
{
    public const int RowGroupRows = 128 * 1024;
    public const int MaxBufferedRows = 512 * 1024;
    public const int MaxOpenFiles = 32;

    private readonly LakeTable _table;
    private readonly LakeStager _stager;
    private readonly int _partitionColumn;
    private readonly DateOnly _fixedPartition;
    private readonly Dictionary<DateOnly, Pending> _pending = [];
    private readonly Dictionary<DateOnly, ParquetFileWriter> _open = [];
    private readonly LinkedList<DateOnly> _recent = new();
    private long _buffered;

    public PartitionedParquetWriter(LakeTable table, LakeStager stager, string partitionColumn)
    {
        _table = table;
        _stager = stager;
        _partitionColumn = table.Schema.IndexOf(partitionColumn);
        if (_partitionColumn < 0)
        {
            throw new ArgumentException($"'{partitionColumn}' is not a column of {table.QualifiedName}", nameof(partitionColumn));
        }
    }

    /// <summary>Every row goes to one partition, <paramref name="partition"/> (a file whose date is in its name).</summary>
    public PartitionedParquetWriter(LakeTable table, LakeStager stager, DateOnly partition)
    {
        _table = table;
        _stager = stager;
        _partitionColumn = -1;
        _fixedPartition = partition;
    }

    public async Task WriteAsync(ColumnBatch batch, CancellationToken ct)
    {
        var groups = new Dictionary<DateOnly, List<int>>();
        if (_partitionColumn < 0)
        {
            groups[_fixedPartition] = Enumerable.Range(0, batch.Count).ToList();
        }
        else
        {
            var times = (DateTime?[])batch.Columns[_partitionColumn];
            for (var row = 0; row < batch.Count; row++)
            {
                var day = DateOnly.FromDateTime(times[row]!.Value);
                if (!groups.TryGetValue(day, out var rows)) { groups[day] = rows = []; }
                rows.Add(row);
            }
        }

        foreach (var (day, rows) in groups)
        {
            if (!_pending.TryGetValue(day, out var pending)) { _pending[day] = pending = new Pending(); }
            pending.Slices.Add((batch, groups.Count == 1 ? null : rows.ToArray()));
            pending.Rows += rows.Count;
            _buffered += rows.Count;
            if (pending.Rows >= RowGroupRows)
            {
                await FlushAsync(day, ct).ConfigureAwait(false);
            }
        }

        while (_buffered > MaxBufferedRows)
        {
            var largest = _pending.MaxBy(p => p.Value.Rows).Key;
            await FlushAsync(largest, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Writes what is buffered and closes every file (footer, fsync); they then wait in the stager for the commit.</summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        foreach (var day in _pending.Keys.ToList())
        {
            await FlushAsync(day, ct).ConfigureAwait(false);
        }

        foreach (var day in _open.Keys.ToList())
        {
            await CloseAsync(day, ct).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var writer in _open.Values)
        {
            await writer.DisposeAsync().ConfigureAwait(false);
        }

        _open.Clear();
    }

    private async Task FlushAsync(DateOnly day, CancellationToken ct)
    {
        if (!_pending.Remove(day, out var pending) || pending.Rows == 0)
        {
            return;
        }

        _buffered -= pending.Rows;
        var columns = new Array[_table.Columns.Count];
        if (pending.Slices.Count == 1 && pending.Slices[0].Rows is null)
        {
            for (var c = 0; c < columns.Length; c++) { columns[c] = pending.Slices[0].Batch.Columns[c]; }
        }
        else
        {
            var all = new List<Array>[columns.Length];
            for (var c = 0; c < columns.Length; c++)
            {
                var parts = pending.Slices.Select(s => s.Rows is null ? s.Batch.Columns[c] : ColumnArrays.Gather(s.Batch.Columns[c], s.Rows)).ToList();
                columns[c] = Concat(parts, pending.Rows);
            }
        }

        var writer = await OpenAsync(day, ct).ConfigureAwait(false);
        await writer.WriteRowGroupAsync(columns, (int)pending.Rows, ct).ConfigureAwait(false);
    }

    private async Task<ParquetFileWriter> OpenAsync(DateOnly day, CancellationToken ct)
    {
        if (_open.TryGetValue(day, out var writer))
        {
            _recent.Remove(day);
            _recent.AddFirst(day);
            return writer;
        }

        if (_open.Count >= MaxOpenFiles)
        {
            await CloseAsync(_recent.Last!.Value, ct).ConfigureAwait(false);
        }

        writer = await ParquetFileWriter.CreateAsync(_stager.NextPath(), _table.Columns, ct).ConfigureAwait(false);
        _open[day] = writer;
        _recent.AddFirst(day);
        return writer;
    }

    private async Task CloseAsync(DateOnly day, CancellationToken ct)
    {
        var writer = _open[day];
        _open.Remove(day);
        _recent.Remove(day);
        await writer.CompleteAsync(ct).ConfigureAwait(false);
        _stager.AddWritten(_table, day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), writer.Path, writer.Rows);
    }

    private static Array Concat(List<Array> parts, long rows)
    {
        var result = Array.CreateInstance(parts[0].GetType().GetElementType()!, rows);
        var at = 0;
        foreach (var p in parts)
        {
            Array.Copy(p, 0, result, at, p.Length);
            at += p.Length;
        }

        return result;
    }

    private sealed class Pending
    {
        public List<(ColumnBatch Batch, int[]? Rows)> Slices { get; } = [];

        public long Rows { get; set; }
    }
}
