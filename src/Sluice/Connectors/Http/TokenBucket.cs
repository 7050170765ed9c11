namespace Sluice.Connectors.Http;

/// <summary>
/// A rate limit: at most <c>rate</c> requests per second on average, with bursts of up to <c>burst</c>. Waits on the
/// injected clock, so tests drive it with a fake one.
/// </summary>
public sealed class TokenBucket
{
    private readonly double _rate;
    private readonly double _burst;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private double _tokens;
    private long _last;

    public TokenBucket(double ratePerSecond, int burst, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burst);
        ArgumentNullException.ThrowIfNull(time);
        _rate = ratePerSecond;
        _burst = burst;
        _time = time;
        _tokens = burst;
        _last = time.GetTimestamp();
    }

    /// <summary>Takes a token now if there is one; otherwise says how long until there will be.</summary>
    public bool TryTake(out TimeSpan wait)
    {
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + (_time.GetElapsedTime(_last, now).TotalSeconds * _rate));
            _last = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                wait = TimeSpan.Zero;
                return true;
            }

            wait = TimeSpan.FromSeconds((1 - _tokens) / _rate);
            return false;
        }
    }

    public async ValueTask TakeAsync(CancellationToken ct)
    {
        while (!TryTake(out var wait))
        {
            await Task.Delay(wait, _time, ct).ConfigureAwait(false);
        }
    }
}
