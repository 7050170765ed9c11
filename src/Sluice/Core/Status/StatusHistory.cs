namespace Sluice.Core.Status;

/// <summary>The last samples of a pipeline (a ring: the oldest goes when it is full), for the console's plots.</summary>
public sealed class StatusHistory(int capacity)
{
    private readonly StatusSample[] _ring = new StatusSample[capacity];
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    public void Add(StatusSample sample)
    {
        lock (_lock)
        {
            _ring[_next] = sample;
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
        }
    }

    /// <summary>Oldest first.</summary>
    public IReadOnlyList<StatusSample> Samples
    {
        get
        {
            lock (_lock)
            {
                var start = (_next - _count + _ring.Length) % _ring.Length;
                return Enumerable.Range(0, _count).Select(i => _ring[(start + i) % _ring.Length]).ToList();
            }
        }
    }
}
