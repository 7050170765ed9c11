namespace Sluice.Core.Schema;

/// <summary>
/// Builds a text column as UTF-8 (<see cref="Utf8Column"/>): the pending value is written straight after the kept
/// ones, so keeping it is remembering where it ends and dropping it is forgetting that it was written.
/// </summary>
public sealed class Utf8ColumnBuilder(int capacity) : ColumnBuilder
{
    // A buffer grown for one huge batch is not kept for the next (see Forget).
    private const int KeepBytes = 4 << 20;

    private byte[] _bytes = new byte[Math.Max(256, capacity * 16)];
    private int[] _ends = new int[capacity];
    private int _kept;
    private int _pending = -1;

    public override bool IsSet => _pending >= 0;

    /// <summary>The pending value's UTF-8 (empty when none is set).</summary>
    public ReadOnlySpan<byte> Pending => _pending < 0 ? default : _bytes.AsSpan(_kept, _pending);

    public void Set(ReadOnlySpan<byte> utf8)
    {
        utf8.CopyTo(Reserve(utf8.Length));
        _pending = utf8.Length;
    }

    /// <summary>Room for a pending value of at most <paramref name="length"/> bytes; <see cref="SetReserved"/> says how many were written.</summary>
    public Span<byte> Reserve(int length)
    {
        if (_bytes.Length - _kept < length)
        {
            Array.Resize(ref _bytes, (int)Math.Min(Array.MaxLength, Math.Max((long)_bytes.Length * 2, (long)_kept + length)));
        }

        return _bytes.AsSpan(_kept, length);
    }

    public void SetReserved(int length) => _pending = length;

    internal override void Commit(int row)
    {
        if (_pending < 0)
        {
            _ends[row] = ~_kept;
        }
        else
        {
            _kept += _pending;
            _ends[row] = _kept;
        }

        Reset();
    }

    internal override void Reset() => _pending = -1;

    internal override void Truncate(int count, int rows) => _kept = count == 0 ? 0 : End(count - 1);

    // Text is kept in row order, so a kept value cannot be taken out of the middle.
    internal override void ClearAt(int row) => throw new NotSupportedException("a kept UTF-8 value cannot be cleared");

    /// <summary>
    /// Gives the kept rows <paramref name="from"/> up to <paramref name="to"/>, the last ones and all missing so far,
    /// one value: a value known only after its rows were kept (a child row's parent key).
    /// </summary>
    public void FillTail(int from, int to, ReadOnlySpan<byte> value)
    {
        for (var row = from; row < to; row++)
        {
            if (_ends[row] >= 0) { throw new InvalidOperationException($"row {row} already has a value"); }
            value.CopyTo(Reserve(value.Length));
            _kept += value.Length;
            _ends[row] = _kept;
        }
    }

    internal override void Grow(int capacity) => Array.Resize(ref _ends, capacity);

    internal override Array ToArray(int count) => ToColumn(count).ToStrings();

    /// <summary>The first <paramref name="count"/> rows, copied out (the builder goes on with its buffers).</summary>
    internal Utf8Column ToColumn(int count)
    {
        var bytes = count == 0 ? 0 : End(count - 1);
        return new Utf8Column(_bytes.AsSpan(0, bytes).ToArray(), _ends.AsSpan(0, count).ToArray(), count);
    }

    private int End(int row) => Utf8Column.EndOf(_ends[row]);

    internal override void Forget(int count)
    {
        _kept = 0;
        _pending = -1;
        if (_bytes.Length > KeepBytes) { _bytes = new byte[KeepBytes / 16]; }
    }
}
