namespace Sluice.Core.Resilience;

/// <summary>
/// How a component tries again what waiting may cure, the one shape every retry of Sluice is given: the first pause
/// <see cref="Delay"/>, doubling per failure up to <see cref="MaxDelay"/> (spread by jitter when <see cref="Jitter"/>,
/// so many clients do not come back at once), for <see cref="Attempts"/> in all, the first one included (null: until
/// it succeeds or the component stops; the bounded queue in front of a sink is then what bounds the waiting), each
/// attempt cut after <see cref="AttemptTimeout"/> when set. What is transient is the technology's to say
/// (<c>PgFailures</c>, <c>RedisFailures</c>, <c>ClickHouseFailures</c>, <c>HttpFailures</c>).
/// </summary>
public sealed record RetryOptions(TimeSpan Delay, TimeSpan MaxDelay, int? Attempts = null)
{
    public bool Jitter { get; init; }

    public TimeSpan? AttemptTimeout { get; init; }

    /// <summary>Retries after the first attempt; null without a bound.</summary>
    public int? Retries => Attempts - 1;
}
