namespace Sluice.Core.Schema;

/// <summary>
/// The unit that flows between pipeline stages: rows of one table held column by column
/// (<c>string?[]</c>, <c>long?[]</c>, <c>double?[]</c>, <c>bool?[]</c>, <c>DateTime?[]</c> in UTC, <c>DateOnly?[]</c>).
/// A text column may come as UTF-8 instead (<see cref="Text"/>, built by ingest): <see cref="Columns"/> still hands out
/// its strings, decoded on first use, while writers that take bytes (the lake) never make them. A value column may carry,
/// beside its array, the source's text of values its type cannot hold (<see cref="Verbatim"/>: a Postgres
/// <c>infinity</c>, a year after 9999 or before Christ), so such a value is never mistaken for a missing one.
/// </summary>
public sealed class ColumnBatch
{
    private readonly Array?[] _columns;
    private readonly Utf8Column?[]? _text;
    private readonly string?[]?[]? _verbatim;

    public ColumnBatch(TableSchema schema, Array[] columns, int count)
        : this(schema, columns, null, count)
    {
    }

    /// <summary>A batch whose column <c>i</c> is <c>columns[i]</c> or, when that is null, the UTF-8 text <c>text[i]</c>.</summary>
    public ColumnBatch(TableSchema schema, Array?[] columns, Utf8Column?[]? text, int count)
        : this(schema, columns, text, count, null)
    {
    }

    /// <summary>A batch whose value column <c>i</c> holds, where <c>verbatim[i][row]</c> is set, that text instead of a value (the array is null there).</summary>
    public ColumnBatch(TableSchema schema, Array?[] columns, Utf8Column?[]? text, int count, string?[]?[]? verbatim)
    {
        ArgumentNullException.ThrowIfNull(columns);
        for (var i = 0; i < columns.Length; i++)
        {
            if (columns[i] is null && text?[i] is null) { throw new ArgumentException($"column {i} has neither values nor text", nameof(columns)); }
        }

        Schema = schema;
        _columns = columns;
        _text = text;
        _verbatim = verbatim is not null && Array.Exists(verbatim, v => v is not null) ? verbatim : null;
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

    /// <summary>Per row, the source's text of a value the column's type cannot hold (its array is null there); null when the column has none.</summary>
    public string?[]? Verbatim(int index) => _verbatim?[index];

    /// <summary>True when some value column carries verbatim text.</summary>
    public bool HasVerbatim => _verbatim is not null;

    public object? Value(int column, int row) => _columns[column] is null && _text?[column] is { } text ? text.GetString(row) : Columns[column].GetValue(row);

    /// <summary>The rows at <paramref name="rows"/>, in that order (text stays UTF-8).</summary>
    public ColumnBatch Gather(ReadOnlySpan<int> rows)
    {
        var columns = new Array?[_columns.Length];
        var text = _text is null ? null : new Utf8Column?[_columns.Length];
        var verbatim = _verbatim is null ? null : new string?[]?[_columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            if (Text(i) is { } t && _columns[i] is null) { text![i] = t.Gather(rows); }
            else { columns[i] = ColumnArrays.Gather(Columns[i], rows); }
            if (Verbatim(i) is { } v) { verbatim![i] = (string?[])ColumnArrays.Gather(v, rows); }
        }

        return new ColumnBatch(Schema, columns, text, rows.Length, verbatim);
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
        string?[]?[]? verbatim = null;
        for (var i = 0; i < columns.Length; i++)
        {
            if (_columns[i] is Utf8ColumnBuilder utf8) { (text ??= new Utf8Column?[columns.Length])[i] = utf8.ToColumn(Count); }
            else { columns[i] = _columns[i].ToArray(Count); }
            if (VerbatimOf(_columns[i]) is { } v) { (verbatim ??= new string?[]?[columns.Length])[i] = v; }
        }

        var batch = new ColumnBatch(Schema, columns, text, Count, verbatim);
        Clear();
        return batch;
    }

    private string?[]? VerbatimOf(ColumnBuilder column) => column switch
    {
        ValueColumnBuilder<DateTime> t => t.VerbatimArray(Count),
        ValueColumnBuilder<DateOnly> d => d.VerbatimArray(Count),
        _ => null,
    };
}
