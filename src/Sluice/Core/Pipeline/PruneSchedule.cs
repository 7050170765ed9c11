using System.Collections.Concurrent;

namespace Sluice.Core.Pipeline;

/// <summary>
/// When a mirror sink prunes what only refuses changes below the source's low-water mark (<see cref="RecordBatch.SettledBelow"/>):
/// per table, once the mark rose since the last prune this sink planned and that was <paramref name="every"/> ago or
/// more; a table's first is due at once; <paramref name="every"/> of zero or less, never. A prune that then fails only
/// waits for the next one due, which keeps the rows longer and nothing else. Shared by the postgres mirror's
/// tombstones (every second) and the ClickHouse mirror's flagged rows (<c>prune_every</c>).
/// </summary>
public sealed class PruneSchedule(TimeSpan every, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, (long Mark, DateTimeOffset At)> _last = new(StringComparer.Ordinal);

    /// <summary>True when <paramref name="table"/>'s prune below <paramref name="mark"/> is due; it then counts as planned now.</summary>
    public bool Due(string table, long mark)
    {
        if (every <= TimeSpan.Zero) { return false; }
        var now = time.GetUtcNow();
        var due = false;
        _last.AddOrUpdate(
            table,
            _ => { due = true; return (mark, now); },
            (_, last) =>
            {
                due = mark > last.Mark && now - last.At >= every;
                return due ? (mark, now) : last;
            });
        return due;
    }
}
