namespace Sluice.Core.Schema;

/// <summary>
/// The unit that flows between pipeline stages: rows of one table held column by column
/// (<c>string?[]</c>, <c>long?[]</c>, <c>double?[]</c>, <c>bool?[]</c>, <c>DateTime?[]</c> in UTC, <c>DateOnly?[]</c>).
/// A text column may come as UTF-8 instead (<see cref="Text"/>, built by ingest): <see cref="Columns"/> still hands out
/// its strings, decoded on first use, while writers that take bytes (the lake) never make them.
/// </summary>
public sealed class ColumnBatch
{
    private readonly Array?[] _columns;
    private readonly Utf8Column?[]? _text;

    public ColumnBatch(TableSchema schema, Array[] columns, int count)
        : this(schema, columns, null, count)
    {
    }

    /// <summary>A batch whose column <c>i</c> is <c>columns[i]</c> or, when that is null, the UTF-8 text <c>text[i]</c>.</summary>
    public ColumnBatch(TableSchema schema, Array?[] columns, Utf8Column?[]? text, int count)
    {
        ArgumentNullException.ThrowIfNull(columns);
        for (var i = 0; i < columns.Length; i++)
        {
            if (columns[i] is null && text?[i] is null) { throw new ArgumentException($"column {i} has neither values nor text", nameof(columns)); }
        }

        Schema = schema;
        _columns = columns;
        _text = text;
        Count = count;
        Columns = new ColumnList(this);
    }

    public TableSchema Schema { get; }

    public IReadOnlyList<Array> Columns { get; }

    public int Count { get; }

    public T?[] Column<T>(int index) where T : struct => (T?[])Columns[index];

    public string?[] Strings(int index) => (string?[])Columns[index];

    /// <summary>The column's values as UTF-8 when it was built that way, else null.</summary>
    public Utf8Column? Text(int index) => _text?[index];

    public object? Value(int column, int row) => _columns[column] is null && _text?[column] is { } text ? text.GetString(row) : Columns[column].GetValue(row);

    /// <summary>The rows at <paramref name="rows"/>, in that order (text stays UTF-8).</summary>
    public ColumnBatch Gather(ReadOnlySpan<int> rows)
    {
        var columns = new Array?[_columns.Length];
        var text = _text is null ? null : new Utf8Column?[_columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            if (Text(i) is { } t && _columns[i] is null) { text![i] = t.Gather(rows); }
            else { columns[i] = ColumnArrays.Gather(Columns[i], rows); }
        }

        return new ColumnBatch(Schema, columns, text, rows.Length);
    }

    private Array Materialize(int index)
    {
        var strings = _text![index]!.ToStrings();
        // Two readers may decode at once; both then use the first one's strings.
        return Interlocked.CompareExchange(ref _columns[index], strings, null) ?? strings;
    }

    private sealed class ColumnList(ColumnBatch batch) : IReadOnlyList<Array>
    {
        public Array this[int index] => Volatile.Read(ref batch._columns[index]) ?? batch.Materialize(index);

        public int Count => batch._columns.Length;

        public IEnumerator<Array> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) { yield return this[i]; }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

public sealed class ColumnBatchBuilder
{
    private readonly ColumnBuilder[] _columns;
    private int _capacity;

    public ColumnBatchBuilder(TableSchema schema, int capacity = 4096)
        : this(schema, capacity, null)
    {
    }

    /// <summary>A builder whose text columns for which <paramref name="utf8"/> says so are built as UTF-8 (<see cref="Utf8ColumnBuilder"/>).</summary>
    public ColumnBatchBuilder(TableSchema schema, int capacity, Func<int, bool>? utf8)
    {
        ArgumentNullException.ThrowIfNull(schema);
        Schema = schema;
        _capacity = Math.Max(16, capacity);
        _columns = schema.Fields.Select((f, i) => f.Type == FieldType.String && utf8?.Invoke(i) == true ? new Utf8ColumnBuilder(_capacity) : ColumnBuilder.For(f.Type, _capacity)).ToArray();
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

    /// <summary>Forgets the kept rows from <paramref name="count"/> on (and the pending row).</summary>
    public void Truncate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Count);
        AbortRow();
        foreach (var c in _columns) { c.Truncate(count, Count); }
        Count = count;
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
        var columns = new Array?[_columns.Length];
        Utf8Column?[]? text = null;
        for (var i = 0; i < columns.Length; i++)
        {
            if (_columns[i] is Utf8ColumnBuilder utf8) { (text ??= new Utf8Column?[columns.Length])[i] = utf8.ToColumn(Count); }
            else { columns[i] = _columns[i].ToArray(Count); }
        }

        var batch = new ColumnBatch(Schema, columns, text, Count);
        Clear();
        return batch;
    }
}
