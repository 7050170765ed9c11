namespace Sluice.Core.Pipeline;

/// <summary>
/// The events of a batch as sequence numbers of a log every worker of a cluster reads (a JetStream stream). A worker
/// that dies holding a batch leaves its events unacknowledged, and another worker gets them again, in other batches
/// and mixed with others: a sink that cannot absorb a second write (the lake appends) records which sequences it
/// committed and skips them when they come back.
/// </summary>
/// <param name="Log">The log's identity: its name and when it was created, so that a log deleted and created again,
/// whose sequences start over, is never taken for the old one.</param>
/// <param name="Ranges">The sequences, as ascending, disjoint runs.</param>
public sealed record LogSequences(string Log, IReadOnlyList<SequenceRange> Ranges)
{
    public static LogSequences Of(string log, IEnumerable<long> sequences) => new(log, SequenceRange.Runs(sequences));

    /// <summary>The sequences of batches joined into one write (all of one log); null when none has any.</summary>
    public static LogSequences? Merge(IEnumerable<LogSequences?> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var all = parts.Where(p => p is not null).ToList();
        if (all.Count == 0) { return null; }
        if (all.Select(p => p!.Log).Distinct(StringComparer.Ordinal).Count() > 1)
        {
            throw new InvalidOperationException($"batches of several logs joined: {string.Join(", ", all.Select(p => p!.Log).Distinct(StringComparer.Ordinal))}");
        }

        return new LogSequences(all[0]!.Log, SequenceRange.Coalesce(all.SelectMany(p => p!.Ranges)));
    }

    public long Count => Ranges.Sum(r => r.Count);

    /// <summary>These sequences less those of <paramref name="ranges"/>.</summary>
    public LogSequences Except(IReadOnlyList<SequenceRange> ranges) => new(Log, SequenceRange.Except(Ranges, ranges));
}

/// <summary>The sequences <paramref name="First"/> to <paramref name="Last"/>, both included.</summary>
public readonly record struct SequenceRange(long First, long Last)
{
    public long Count => Last - First + 1;

    /// <summary>Ascending, disjoint runs of the given sequences.</summary>
    public static IReadOnlyList<SequenceRange> Runs(IEnumerable<long> sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        return Coalesce(sequences.Select(s => new SequenceRange(s, s)));
    }

    /// <summary>The same sequences as ascending, disjoint runs, touching ones joined.</summary>
    public static IReadOnlyList<SequenceRange> Coalesce(IEnumerable<SequenceRange> ranges)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        var runs = new List<SequenceRange>();
        foreach (var r in ranges.OrderBy(r => r.First))
        {
            if (runs.Count > 0 && r.First <= runs[^1].Last + 1)
            {
                runs[^1] = runs[^1] with { Last = Math.Max(runs[^1].Last, r.Last) };
                continue;
            }

            runs.Add(r);
        }

        return runs;
    }

    /// <summary>The sequences of <paramref name="ranges"/> that none of <paramref name="removed"/> holds.</summary>
    public static IReadOnlyList<SequenceRange> Except(IReadOnlyList<SequenceRange> ranges, IReadOnlyList<SequenceRange> removed)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        ArgumentNullException.ThrowIfNull(removed);
        var cuts = Coalesce(removed);
        var left = new List<SequenceRange>();
        foreach (var r in Coalesce(ranges))
        {
            var from = r.First;
            foreach (var cut in cuts)
            {
                if (cut.Last < from || cut.First > r.Last) { continue; }
                if (cut.First > from) { left.Add(new SequenceRange(from, cut.First - 1)); }
                from = cut.Last + 1;
                if (from > r.Last) { break; }
            }

            if (from <= r.Last) { left.Add(new SequenceRange(from, r.Last)); }
        }

        return left;
    }

    /// <summary>Whether one of <paramref name="ranges"/> (ascending, disjoint) holds <paramref name="sequence"/>.</summary>
    public static bool AnyHolds(IReadOnlyList<SequenceRange> ranges, long sequence)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        int lo = 0, hi = ranges.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            if (sequence < ranges[mid].First) { hi = mid - 1; }
            else if (sequence > ranges[mid].Last) { lo = mid + 1; }
            else { return true; }
        }

        return false;
    }
}
