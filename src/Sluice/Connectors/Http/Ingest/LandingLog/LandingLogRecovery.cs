using System.Globalization;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>How a segment file read back at start: whole records from its start up to <see cref="Valid"/>, then <see cref="Fault"/>.</summary>
/// <param name="Start">The offset the segment starts at (its file name).</param>
/// <param name="Length">The file's length.</param>
/// <param name="Valid">Bytes of whole records with good checksums from the start.</param>
/// <param name="IntactAfter">Whether a whole record with a good checksum starts somewhere after the first bad byte.</param>
public sealed record SegmentScan(string File, long Start, long Length, long Valid, SegmentFault Fault, bool IntactAfter)
{
    public long ValidEnd => Start + Valid;

    public long FileEnd => Start + Length;
}

public enum SegmentFault
{
    None,

    /// <summary>A record fails its checksum or has an impossible size.</summary>
    Checksum,

    /// <summary>The file ends inside a record.</summary>
    Truncated,
}

/// <summary>Damage the log found in itself: it refuses appends and readers stop at <see cref="Offset"/> until an operator repairs it.</summary>
/// <param name="Segment">The segment file name (under the log's folder).</param>
/// <param name="Offset">The log offset where the damage starts (records before it are whole).</param>
public sealed record LandingLogDamage(string Folder, string Segment, long Offset, string What)
{
    /// <summary>What the operator reads: where, what, and the way out.</summary>
    public string Message => string.Create(CultureInfo.InvariantCulture,
        $"landing log '{Folder}' is damaged in segment {Segment} at offset {Offset}: {What}. Ingest of this stream is refused and the pipeline stops at that offset; " +
        $"nothing was changed. To go on, stop Sluice and run 'sluice landing repair <recipe>' (it keeps a copy of the damaged segment, dead-letters the unreadable bytes and lets ingest continue), or restore the segment from a backup.");
}

/// <summary>A torn tail cut after an unclean stop: bytes after the newest segment's last whole record, never fsynced, so never acknowledged.</summary>
public sealed record TornTail(string Segment, long Offset, long Bytes);

/// <summary>What the log does at start, decided from what it can prove: the clean-stop marker, each record's checksum, and where each segment starts.</summary>
public sealed record LandingLogRecovery(long End, TornTail? Cut, LandingLogDamage? Damage)
{
    /// <summary>
    /// The decision table. After an unclean stop (<paramref name="cleanEnd"/> null) bad bytes at the end of the newest
    /// segment, with no whole record after them, are a torn tail: cut. Anything else is damage, reported with segment and
    /// offset: bad bytes in an older segment, or followed by whole records; an older segment that does not end where the
    /// next one starts; after a clean stop, any bad byte and any end other than the one the marker recorded. Positions the
    /// sinks committed are checked later (<see cref="CheckCommitted"/>).
    /// </summary>
    /// <param name="segments">Oldest first; at least one.</param>
    /// <param name="cleanEnd">The end offset the clean-stop marker recorded, or null after an unclean stop.</param>
    public static LandingLogRecovery Decide(string folder, IReadOnlyList<SegmentScan> segments, long? cleanEnd)
    {
        ArgumentNullException.ThrowIfNull(segments);
        for (var i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            var newest = i == segments.Count - 1;
            if (s.Fault != SegmentFault.None)
            {
                var what = s.Fault == SegmentFault.Checksum ? "a record fails its checksum" : $"the file ends inside a record ({s.Length - s.Valid} bytes of it)";
                if (!newest)
                {
                    return Damaged(folder, s, s.ValidEnd, $"{what}, in a segment that was complete when the next one began");
                }

                if (cleanEnd is not null)
                {
                    return Damaged(folder, s, s.ValidEnd, $"{what}, after a clean stop (everything was fsynced then)");
                }

                if (s.IntactAfter)
                {
                    return Damaged(folder, s, s.ValidEnd, $"{what}, and whole records follow it: not a torn tail");
                }
            }

            if (!newest && s.FileEnd != segments[i + 1].Start)
            {
                var next = segments[i + 1];
                var gap = s.FileEnd < next.Start ? $"{next.Start - s.FileEnd} bytes are missing before the next segment ({next.File} starts at {next.Start})"
                    : $"it runs {s.FileEnd - next.Start} bytes into the next segment ({next.File} starts at {next.Start})";
                return Damaged(folder, s, Math.Min(s.FileEnd, next.Start), $"the segment ends at offset {s.FileEnd}: {gap}");
            }
        }

        var last = segments[^1];
        var end = last.ValidEnd;
        if (cleanEnd is { } clean && clean != end)
        {
            return clean > end
                ? Damaged(folder, last, end, $"the log was stopped cleanly at offset {clean} but ends at {end}: {clean - end} acknowledged bytes are missing")
                : Damaged(folder, last, clean, $"the log was stopped cleanly at offset {clean} but holds {end - clean} bytes after it");
        }

        var cut = last.Valid < last.Length ? new TornTail(last.File, end, last.Length - last.Valid) : null;
        return new LandingLogRecovery(end, cut, null);
    }

    /// <summary>
    /// Damage the sinks' checkpoints reveal: a sink committed past the log's end (records it acknowledged are gone, and
    /// new events would get offsets it skips), or the oldest segment starts after what the slowest sink still needs.
    /// </summary>
    public static LandingLogDamage? CheckCommitted(string folder, IReadOnlyList<(string Segment, long Start)> segments, long end, IReadOnlyList<(string Sink, long Position)> committed)
    {
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(committed);
        if (committed.Count == 0)
        {
            return null;
        }

        var highest = committed.MaxBy(c => c.Position);
        if (highest.Position > end)
        {
            return new LandingLogDamage(folder, segments[^1].Segment, end,
                $"sink {highest.Sink} committed up to offset {highest.Position} but the log ends at {end}: records it acknowledged are missing (new events would get offsets it already has)");
        }

        var lowest = committed.MinBy(c => c.Position);
        if (lowest.Position < segments[0].Start)
        {
            return new LandingLogDamage(folder, segments[0].Segment, lowest.Position,
                $"sink {lowest.Sink} has committed up to offset {lowest.Position} but the oldest segment starts at {segments[0].Start}: records it still needs are missing");
        }

        return null;
    }

    private static LandingLogRecovery Damaged(string folder, SegmentScan segment, long offset, string what) =>
        new(offset, null, new LandingLogDamage(folder, segment.File, offset, what));
}
