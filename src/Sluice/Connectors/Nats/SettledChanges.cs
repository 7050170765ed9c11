namespace Sluice.Connectors.Nats;

/// <summary>
/// A consuming worker's low-water mark of a CDC pipeline's JetStream stream (<see cref="Core.Pipeline.RecordBatch.SettledBelow"/>):
/// the lowest <c>_lsn</c> a change can still reach the sinks with. Each change message carries the relay's mark when
/// it was published, <c>C</c> (<see cref="CdcChangeLog"/>): every change below <c>C</c> was stored in the stream
/// before (the relay acknowledges a position in the slot only once JetStream stored every change up to it) and is not
/// read from the slot again. So once every message stored before that message (sequence <c>s</c>) is acknowledged,
/// no change below <c>C</c> can come any more: the stream is a work queue, so the stream's first sequence is its oldest
/// message not acknowledged, and when it is at <c>s</c> or past it, those before are gone for good; every message
/// stored after is a change at or above <c>C</c>, or a copy of one below, which JetStream's duplicate window
/// (<see cref="CdcChangeLog.DedupWindow"/>) stores no second time. A message is acknowledged only once every sink
/// committed it, and a paused worker's late write of one is refused by its partition's fence.
/// </summary>
/// <remarks>
/// One candidate (a message's sequence and mark) is kept at a time, the first seen after the last one proved: the mark
/// lags the stream by about one look at its first sequence (every two seconds), which only keeps tombstones longer.
/// </remarks>
internal sealed class SettledChanges
{
    private readonly Lock _gate = new();
    private (long Sequence, long Mark)? _candidate;
    private long _settled;

    /// <summary>The mark proved so far, or null before the first.</summary>
    public long? Below
    {
        get
        {
            lock (_gate) { return _settled > 0 ? _settled : null; }
        }
    }

    /// <summary>A message read: its stream sequence and the mark it carries.</summary>
    public void Seen(long sequence, long mark)
    {
        if (sequence <= 0 || mark <= 0) { return; }
        lock (_gate)
        {
            if (mark <= _settled) { return; }
            // A later mark of an earlier message proves more, as soon: it replaces the candidate.
            if (_candidate is not { } c || (sequence <= c.Sequence && mark >= c.Mark)) { _candidate = (sequence, mark); }
        }
    }

    /// <summary>
    /// The stream's first sequence as just read (for an empty stream, the next to be stored): every message stored
    /// before it has been acknowledged.
    /// </summary>
    public void FirstUnacknowledged(long sequence)
    {
        lock (_gate)
        {
            if (_candidate is { } c && sequence >= c.Sequence)
            {
                _settled = Math.Max(_settled, c.Mark);
                _candidate = null;
            }
        }
    }
}
