namespace Sluice.Connectors.Files;

/// <summary>Tracks the 1-based line number of positions in a sliding read buffer, counting newlines only once.</summary>
internal sealed class LineCounter
{
    private int _cursor;
    private long _line = 1;

    public long LineAt(ReadOnlySpan<byte> buffer, int position)
    {
        if (position > _cursor)
        {
            _line += buffer[_cursor..position].Count((byte)'\n');
            _cursor = position;
        }

        return _line;
    }

    /// <summary>The buffer dropped its first <paramref name="count"/> bytes.</summary>
    public void Shift(ReadOnlySpan<byte> buffer, int count)
    {
        LineAt(buffer, count);
        _cursor -= count;
    }
}
