namespace Sluice.Core.Schema;

/// <summary>
/// The unit that flows between pipeline stages: rows of one table held column by column
/// (<c>string?[]</c>, <c>long?[]</c>, <c>double?[]</c>, <c>bool?[]</c>, <c>DateTime?[]</c> in UTC, <c>DateOnly?[]</c>).
/// </summary>
public sealed class ColumnBatch(TableSchema schema, Array[] columns, int count)
{
    public TableSchema Schema { get; } = schema;

    public IReadOnlyList<Array> Columns { get; } = columns;

    public int Count { get; } = count;

    public T?[] Column<T>(int index) where T : struct => (T?[])Columns[index];

    public string?[] Strings(int index) => (string?[])Columns[index];

    public object? Value(int column, int row) => Columns[column].GetValue(row);
}

public sealed class ColumnBatchBuilder
{
    private readonly ColumnBuilder[] _columns;
    private int _capacity;

    public ColumnBatchBuilder(TableSchema schema, int capacity = 4096)
    {
        Schema = schema;
        _capacity = Math.Max(16, capacity);
        _columns = schema.Fields.Select(f => ColumnBuilder.For(f.Type, _capacity)).ToArray();
    }

    public TableSchema Schema { get; }

    public int Count { get; private set; }

    /// <summary>Rows the builder holds room for (it grows by doubling and keeps what it grew to).</summary>
    public int Capacity => _capacity;

    public ColumnBuilder this[int index] => _columns[index];

    public void CommitRow()
    {
        if (Count == _capacity)
        {
            _capacity *= 2;
            foreach (var c in _columns)
            {
                c.Grow(_capacity);
            }
        }

        foreach (var c in _columns)
        {
            c.Commit(Count);
        }

        Count++;
    }

    public void AbortRow()
    {
        foreach (var c in _columns)
        {
            c.Reset();
        }
    }

    /// <summary>Forgets the rows built so far.</summary>
    public void Clear()
    {
        foreach (var c in _columns) { c.Forget(Count); }
        Count = 0;
    }

    /// <summary>Hands out the rows built so far and starts an empty batch.</summary>
    public ColumnBatch Flush()
    {
        var batch = new ColumnBatch(Schema, _columns.Select(c => c.ToArray(Count)).ToArray(), Count);
        Clear();
        return batch;
    }
}
