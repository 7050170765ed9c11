using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The rows of requests just appended to the landing log, flattened at ingest, waiting for the stream's pipeline: ingest
/// parses every event anyway, so the pipeline takes these rows instead of reading the same events back from the log and
/// parsing them a second time. Purely an optimisation, never the record: an entry is used only once the log has it on
/// disk, and whatever is not handed off (the handoff was full, the request had duplicates, the process restarted) the
/// pipeline reads from the log as before, with the same rows as the result.
/// Bounded by <see cref="Capacity"/> bytes of landed events; entries are added in log order, under the stream's append lock,
/// before their events are appended: once appended they may reach the disk at once, and a reader that found no entry for
/// durable events would parse them (and the requests after them in the same read) from the log.
/// </summary>
public sealed class IngestHandoff(long capacity)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<HandedOffRows> _entries = new();
    private long _bytes;

    /// <summary>The most landed bytes whose rows may wait here at once (their rows take about twice that in memory).</summary>
    public long Capacity { get; } = capacity;

    /// <summary>Landed bytes whose rows wait here now.</summary>
    public long Bytes { get { lock (_gate) { return _bytes; } } }

    /// <summary>Whether rows of <paramref name="bytes"/> landed bytes would fit now (a hint: <see cref="TryAdd"/> decides).</summary>
    public bool HasRoom(long bytes)
    {
        lock (_gate) { return _bytes + bytes <= Capacity; }
    }

    /// <summary>Adds a request's rows (in log order); false, keeping nothing, when they do not fit.</summary>
    public bool TryAdd(HandedOffRows rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        lock (_gate)
        {
            if (_bytes + rows.Bytes > Capacity)
            {
                return false;
            }

            _entries.AddLast(rows);
            _bytes += rows.Bytes;
            return true;
        }
    }

    /// <summary>Takes back the entry added last, when it is <paramref name="rows"/>: its append was refused.</summary>
    public void Withdraw(HandedOffRows rows)
    {
        lock (_gate)
        {
            if (_entries.Last is { } last && ReferenceEquals(last.Value, rows))
            {
                _entries.RemoveLast();
                _bytes -= rows.Bytes;
            }
        }
    }

    /// <summary>Where the first entry waiting starts in the log, or null when none waits.</summary>
    public long? NextStart
    {
        get
        {
            lock (_gate) { return _entries.First?.Value.Start; }
        }
    }

    /// <summary>
    /// The rows of the request that starts exactly at <paramref name="at"/>, when the log has them on disk
    /// (<paramref name="durableEnd"/>). Entries the reader is already past (it read them from the log) are dropped.
    /// </summary>
    public bool TryTake(long at, long durableEnd, out HandedOffRows rows)
    {
        lock (_gate)
        {
            while (_entries.First is { } stale && stale.Value.Start < at)
            {
                _bytes -= stale.Value.Bytes;
                _entries.RemoveFirst();
            }

            if (_entries.First is { } first && first.Value.Start == at && first.Value.End <= durableEnd)
            {
                rows = first.Value;
                _entries.RemoveFirst();
                _bytes -= rows.Bytes;
                return true;
            }

            rows = null!;
            return false;
        }
    }
}

/// <summary>
/// One request's rows as ingest flattened them: every table of the stream, with each row's <c>_offset</c> holding the
/// ordinal of its event among the request's landed events until <see cref="Place"/> puts in the log offsets.
/// </summary>
public sealed class HandedOffRows(long start, long end, IReadOnlyList<ColumnBatch> tables, long[] eventStarts, int[] offsetColumns)
{
    /// <summary>Log offset of the request's first landed event.</summary>
    public long Start { get; } = start;

    /// <summary>Log offset after its last landed event.</summary>
    public long End { get; } = end;

    public long Bytes => End - Start;

    public int Events => eventStarts.Length;

    /// <summary>The tables with each row's <c>_offset</c> set to where its event starts in the log.</summary>
    public IReadOnlyList<ColumnBatch> Place()
    {
        for (var t = 0; t < tables.Count; t++)
        {
            var offsets = (long?[])tables[t].Columns[offsetColumns[t]];
            for (var r = 0; r < tables[t].Count; r++)
            {
                offsets[r] = eventStarts[(int)offsets[r]!.Value];
            }
        }

        return tables;
    }
}
