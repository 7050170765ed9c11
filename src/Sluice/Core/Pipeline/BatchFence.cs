namespace Sluice.Core.Pipeline;

/// <summary>
/// The partition leases a batch was read under (cluster mode with the shared metadata store): for each partition of
/// the batch, the lease's fencing token and the last stream sequence read. A sink that can commits the marks in the
/// transaction of the rows and refuses the batch when a newer token of one of its partitions is recorded there, so a
/// worker that lost a lease while paused (SIGSTOP, a long GC, cut off from PostgreSQL) cannot write over what the
/// partition's new owner wrote.
/// </summary>
public sealed record BatchFence(IReadOnlyList<PartitionMark> Marks)
{
    /// <summary>The fence of batches joined into one write: per partition the newest token, and the last sequence read under it.</summary>
    public static BatchFence? Merge(IEnumerable<BatchFence?> fences)
    {
        ArgumentNullException.ThrowIfNull(fences);
        var marks = fences.Where(f => f is not null).SelectMany(f => f!.Marks)
            .GroupBy(m => (m.Stream, m.Partition))
            .Select(g => g.OrderBy(m => m.Token).ThenBy(m => m.Sequence).Last())
            .ToList();
        return marks.Count == 0 ? null : new BatchFence(marks);
    }
}

/// <param name="Stream">The partitioned log (a JetStream stream).</param>
/// <param name="Partition">The partition's number.</param>
/// <param name="Token">The fencing token of the lease the batch was read under: a new owner's is higher.</param>
/// <param name="Sequence">The last stream sequence of the partition in the batch (grows under one owner).</param>
public readonly record struct PartitionMark(string Stream, int Partition, long Token, long Sequence);

/// <summary>A sink refused a batch: a partition of it was taken over by another worker since it was read (a newer fencing token is recorded). Nothing of the batch was written.</summary>
public sealed class FencedBatchException(string message) : SluiceException(message);
