using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>Where a chunk went: its position in the stream, the rows emitted and those a newer streamed change superseded.</summary>
internal readonly record struct ChunkPlacement(long Position, int Emitted, int Superseded);

/// <summary>
/// One chunk of an incremental snapshot between its two watermarks (the DBLog algorithm). The snapshot writes the low
/// watermark into the WAL, reads the chunk, <see cref="Fill"/>s it here and writes the high watermark. The change reader
/// meets the watermarks in WAL order: from the moment this window is set (just before the low watermark is written)
/// it reports every key the stream changes (<see cref="Changed"/>), since the stream's version of those rows is as new
/// as the chunk's or newer; at the high one it emits the chunk without them (<see cref="Close"/>). So a chunk row never
/// overwrites a newer change, and a row deleted meanwhile is not brought back.
/// </summary>
internal sealed class PgChunkWindow(string token, CdcTable table)
{
    /// <summary>Keys remembered between the watermarks at most; past it the chunk is read again (a burst on its table).</summary>
    public const int MaxChangedKeys = 100_000;

    private readonly Lock _gate = new();
    private readonly HashSet<string> _changed = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<ChunkPlacement?> _placed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _open;
    private bool _truncated;
    private bool _overflow;
    private ColumnBatch? _rows;
    private string[]? _keys;

    public string Token { get; } = token;

    public CdcTable Table { get; } = table;

    /// <summary>The snapshot the chunk belongs to (<see cref="PgSnapshotNames"/>), told with its rows where they enter the stream.</summary>
    public string Snapshot { get; init; } = "";

    /// <summary>Between the watermarks: the reader reports the keys of this table's changes.</summary>
    public bool IsOpen => _open;

    /// <summary>Where the chunk went, or null when it must be read again.</summary>
    public Task<ChunkPlacement?> Placement => _placed.Task;

    public bool IsFor(CdcTable other) => other.Schema == Table.Schema && other.Name == Table.Name;

    public void Open() => _open = true;

    public void Changed(string key)
    {
        lock (_gate)
        {
            if (_changed.Count >= MaxChangedKeys) { _overflow = true; return; }
            _changed.Add(key);
        }
    }

    /// <summary>A TRUNCATE between the watermarks: the chunk may predate it, and whatever follows it is streamed.</summary>
    public void Truncated()
    {
        lock (_gate) { _truncated = true; }
    }

    /// <summary>The chunk as read; <paramref name="keys"/>[i] is row i's key (<see cref="KeyText"/>).</summary>
    public void Fill(ColumnBatch rows, string[] keys)
    {
        lock (_gate) { (_rows, _keys) = (rows, keys); }
    }

    /// <summary>
    /// At the high watermark: the chunk's rows whose key the stream did not change between the watermarks, each
    /// given <paramref name="lsn"/> (where they enter the stream); null when it must be read again.
    /// </summary>
    public ColumnBatch? Close(long lsn, out int superseded)
    {
        lock (_gate)
        {
            _open = false;
            superseded = 0;
            if (_rows is null || _keys is null || _overflow) { return null; }
            if (_truncated)
            {
                superseded = _rows.Count;
                return _rows.Gather([]);
            }

            var keep = new List<int>(_rows.Count);
            for (var i = 0; i < _keys.Length; i++)
            {
                if (!_changed.Contains(_keys[i])) { keep.Add(i); }
            }

            superseded = _rows.Count - keep.Count;
            var rows = keep.Count == _rows.Count ? _rows : _rows.Gather(keep.ToArray());
            var column = rows.Column<long>(rows.Schema.IndexOf(ChangeEnvelope.Lsn));
            for (var i = 0; i < rows.Count; i++) { column[i] = lsn; }
            return rows;
        }
    }

    public void Placed(ChunkPlacement? placement) => _placed.TrySetResult(placement);

    /// <summary>Gives up the chunk (the stream stopped): it is read again.</summary>
    public void Abandon() => _placed.TrySetResult(null);

    /// <summary>A key as one string: the key columns' Postgres text, separated by a character no text value holds unescaped here.</summary>
    public static string KeyText(IEnumerable<string?> parts) => string.Join('\u001f', parts.Select(p => p ?? "\u0000"));
}
