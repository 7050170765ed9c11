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
/// overwrites a newer change, and a row deleted meanwhile is not brought back. One exception keeps values the stream
/// never carries: a column that every change of a key between the watermarks marked unchanged (a TOASTed value its
/// UPDATE left alone, REPLICA IDENTITY DEFAULT) kept its value all that time, so the chunk's value is current. Such a
/// key's chunk row is emitted with only those columns (and the key), every other column marked unchanged: a sink
/// that never had the row (the snapshot was to bring it) gets the value, and keeps the stream's newer ones.
/// </summary>
internal sealed class PgChunkWindow(string token, CdcTable table)
{
    /// <summary>Keys remembered between the watermarks at most; past it the chunk is read again (a burst on its table).</summary>
    public const int MaxChangedKeys = 100_000;

    private readonly Lock _gate = new();
    /// <summary>Each key the stream changed, with the columns every one of its changes marked unchanged (null: none).</summary>
    private readonly Dictionary<string, HashSet<string>?> _changed = new(StringComparer.Ordinal);
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

    /// <summary>A change of <paramref name="key"/>; <paramref name="unchanged"/>: the columns it did not carry (null for a delete, or a change that carried every value).</summary>
    public void Changed(string key, IReadOnlyCollection<string>? unchanged = null)
    {
        lock (_gate)
        {
            if (_changed.TryGetValue(key, out var marked))
            {
                if (marked is null) { return; }
                if (unchanged is null) { _changed[key] = null; }
                else { marked.IntersectWith(unchanged); }
                if (marked is { Count: 0 }) { _changed[key] = null; }
                return;
            }

            if (_changed.Count >= MaxChangedKeys) { _overflow = true; return; }
            _changed[key] = unchanged is { Count: > 0 } ? new HashSet<string>(unchanged, StringComparer.Ordinal) : null;
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
            Dictionary<int, HashSet<string>>? fills = null;
            for (var i = 0; i < _keys.Length; i++)
            {
                if (!_changed.TryGetValue(_keys[i], out var marked)) { keep.Add(i); }
                else if (marked is not null && _rows.Schema.IndexOf(ChangeEnvelope.Unchanged) >= 0)
                {
                    keep.Add(i);
                    (fills ??= [])[i] = marked;
                }
            }

            superseded = _rows.Count - keep.Count + (fills?.Count ?? 0);
            var rows = keep.Count == _rows.Count && fills is null ? _rows : _rows.Gather(keep.ToArray());
            if (fills is not null) { rows = Filled(rows, keep, fills); }
            var column = rows.Column<long>(rows.Schema.IndexOf(ChangeEnvelope.Lsn));
            for (var i = 0; i < rows.Count; i++) { column[i] = lsn; }
            return rows;
        }
    }

    /// <summary>
    /// The gathered chunk rows with each row of <paramref name="fills"/> (by its index in the chunk) reduced to its key
    /// and the columns the stream never carried between the watermarks; every other column NULL and named in
    /// <c>_unchanged</c>, so a sink keeps the stream's newer values of them.
    /// </summary>
    private static ColumnBatch Filled(ColumnBatch rows, List<int> kept, Dictionary<int, HashSet<string>> fills)
    {
        var schema = rows.Schema;
        var columns = Enumerable.Range(0, schema.Fields.Count).Select(c => (Array)rows.Columns[c].Clone()).ToArray();
        var verbatim = Enumerable.Range(0, schema.Fields.Count).Select(c => (string?[]?)rows.Verbatim(c)?.Clone()).ToArray();
        var unchangedAt = schema.IndexOf(ChangeEnvelope.Unchanged);
        var own = schema.Fields.Select((f, c) => (f.Name, c)).Where(x => !ChangeEnvelope.IsEnvelope(x.Name) && !schema.Key.Contains(x.Name)).ToList();
        for (var row = 0; row < kept.Count; row++)
        {
            if (!fills.TryGetValue(kept[row], out var carried)) { continue; }
            var others = new List<string>();
            foreach (var (name, c) in own.Where(x => !carried.Contains(x.Name)))
            {
                columns[c].SetValue(null, row);
                if (verbatim[c] is { } text) { text[row] = null; }
                others.Add(name);
            }

            columns[unchangedAt].SetValue(ChangeEnvelope.UnchangedValue(others), row);
        }

        return new ColumnBatch(schema, columns, null, rows.Count, verbatim);
    }

    public void Placed(ChunkPlacement? placement) => _placed.TrySetResult(placement);

    /// <summary>Gives up the chunk (the stream stopped): it is read again.</summary>
    public void Abandon() => _placed.TrySetResult(null);

    /// <summary>A key as one string: the key columns' Postgres text, separated by a character no text value holds unescaped here.</summary>
    public static string KeyText(IEnumerable<string?> parts) => string.Join('\u001f', parts.Select(p => p ?? "\u0000"));
}
