namespace Sluice.Core.Schema;

/// <summary>
/// Builds one typed column of a batch without boxing. Values are written into the current (uncommitted) row;
/// <see cref="ColumnBatchBuilder.CommitRow"/> keeps them, <see cref="ColumnBatchBuilder.AbortRow"/> forgets them,
/// so an invalid record never half-lands.
/// </summary>
public abstract class ColumnBuilder
{
    public abstract bool IsSet { get; }

    internal abstract void Commit(int row);

    internal abstract void Reset();

    internal abstract Array ToArray(int count);

    /// <summary>Drops the references the first <paramref name="count"/> rows hold, so a reused builder keeps nothing alive.</summary>
    internal virtual void Forget(int count)
    {
    }

    /// <summary>Forgets the kept rows from <paramref name="count"/> up to <paramref name="rows"/>.</summary>
    internal virtual void Truncate(int count, int rows)
    {
    }

    /// <summary>Makes a kept row's value missing.</summary>
    internal abstract void ClearAt(int row);

    internal abstract void Grow(int capacity);

    public static ColumnBuilder For(FieldType type, int capacity) => type switch
    {
        FieldType.String => new TypedColumnBuilder<string>(capacity),
        FieldType.Integer => new ValueColumnBuilder<long>(capacity),
        FieldType.Double => new ValueColumnBuilder<double>(capacity),
        FieldType.Boolean => new ValueColumnBuilder<bool>(capacity),
        FieldType.Timestamp => new ValueColumnBuilder<DateTime>(capacity),
        FieldType.Date => new ValueColumnBuilder<DateOnly>(capacity),
        FieldType.Decimal => new TypedColumnBuilder<string>(capacity),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}

/// <summary>A reference-typed column (strings); null is a missing value.</summary>
public sealed class TypedColumnBuilder<T>(int capacity) : ColumnBuilder
    where T : class
{
    private T?[] _values = new T?[capacity];
    private T? _pending;
    private bool _set;

    public override bool IsSet => _set;

    public T? Pending => _pending;

    public void Set(T? value)
    {
        _pending = value;
        _set = value is not null;
    }

    internal override void Commit(int row)
    {
        _values[row] = _pending;
        Reset();
    }

    internal override void Reset()
    {
        _pending = null;
        _set = false;
    }

    internal override void Grow(int capacity) => Array.Resize(ref _values, capacity);

    internal override Array ToArray(int count) => _values.AsSpan(0, count).ToArray();

    internal override void Forget(int count) => Array.Clear(_values, 0, count);

    internal override void Truncate(int count, int rows) => Array.Clear(_values, count, rows - count);

    internal override void ClearAt(int row) => _values[row] = null;

    /// <summary>A kept row's value.</summary>
    public T? ValueAt(int row) => _values[row];

    /// <summary>Changes a kept row's value (what is known of a row only after it was kept).</summary>
    public void SetAt(int row, T? value) => _values[row] = value;
}

/// <summary>
/// A value-typed column, produced as <c>T?[]</c>. A value the type cannot hold (a Postgres <c>infinity</c> or a year
/// after 9999 in a timestamp) is kept as the source's text instead (<see cref="SetVerbatim"/>): null in the array, the
/// text in <see cref="ColumnBatch.Verbatim"/>.
/// </summary>
public sealed class ValueColumnBuilder<T>(int capacity) : ColumnBuilder
    where T : struct
{
    private T?[] _values = new T?[capacity];
    private string?[]? _verbatim;
    private T _pending;
    private string? _pendingVerbatim;
    private bool _set;

    public override bool IsSet => _set || _pendingVerbatim is not null;

    public T Pending => _pending;

    public void Set(T value)
    {
        _pending = value;
        _set = true;
        _pendingVerbatim = null;
    }

    /// <summary>Sets the pending value as the source's text: a value outside what <typeparamref name="T"/> can hold.</summary>
    public void SetVerbatim(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _pendingVerbatim = text;
        _set = false;
    }

    internal override void Commit(int row)
    {
        _values[row] = _set ? _pending : null;
        if (_pendingVerbatim is not null) { (_verbatim ??= new string?[_values.Length])[row] = _pendingVerbatim; }
        else if (_verbatim is not null) { _verbatim[row] = null; }
        Reset();
    }

    internal override void Reset()
    {
        _set = false;
        _pendingVerbatim = null;
    }

    internal override void Grow(int capacity)
    {
        Array.Resize(ref _values, capacity);
        if (_verbatim is not null) { Array.Resize(ref _verbatim, capacity); }
    }

    internal override Array ToArray(int count) => _values.AsSpan(0, count).ToArray();

    /// <summary>The verbatim texts of the first <paramref name="count"/> rows; null when there are none.</summary>
    internal string?[]? VerbatimArray(int count)
    {
        if (_verbatim is null || Array.TrueForAll(_verbatim, v => v is null)) { return null; }
        return _verbatim.AsSpan(0, count).ToArray();
    }

    internal override void Forget(int count) => _verbatim = null;

    internal override void Truncate(int count, int rows)
    {
        if (_verbatim is not null) { Array.Clear(_verbatim, count, rows - count); }
    }

    internal override void ClearAt(int row)
    {
        _values[row] = null;
        if (_verbatim is not null) { _verbatim[row] = null; }
    }

    /// <summary>Changes a kept row's value (what is known of a row only after it was kept).</summary>
    public void SetAt(int row, T value)
    {
        _values[row] = value;
        if (_verbatim is not null) { _verbatim[row] = null; }
    }
}
