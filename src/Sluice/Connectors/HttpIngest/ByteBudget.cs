namespace Sluice.Connectors.HttpIngest;

/// <summary>A bound on bytes held at once (request bodies in memory): take before reading, give back after.</summary>
public sealed class ByteBudget(long capacity)
{
    private long _used;

    public long Capacity => capacity;

    public long Used => Interlocked.Read(ref _used);

    public bool TryTake(long bytes)
    {
        while (true)
        {
            var used = Interlocked.Read(ref _used);
            if (used + bytes > capacity && used > 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used)
            {
                return true;
            }
        }
    }

    public void Give(long bytes) => Interlocked.Add(ref _used, -bytes);
}
