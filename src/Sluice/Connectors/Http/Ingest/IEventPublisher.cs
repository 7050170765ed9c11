namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// Where accepted events land instead of the local landing log, in cluster mode: a replicated log every worker reads
/// (JetStream, <c>Connectors/Nats</c>). Each event goes as one landing record (<see cref="LandingRecord"/>), so a
/// reader parses it exactly as it parses the local log.
/// </summary>
public interface IEventPublisher
{
    /// <summary>
    /// Returns once every event is stored by the log (replicated), with how many of them it already had (same key
    /// within its deduplication window); throws <see cref="EventsNotStoredException"/> otherwise. The request is
    /// answered 2xx only after this, and a client's retry of a refused request is recognised by the log.
    /// </summary>
    Task<int> PublishAsync(IReadOnlyList<PublishedEvent> events, CancellationToken ct);

    /// <summary>
    /// Why the log takes no new events now (more of them waiting for the workers than its bound), or null: the
    /// request is then refused with 503 and Retry-After before it is parsed, as one process refuses past
    /// <c>max_backlog_bytes</c>. A cached figure: read for every request, so never a call to the log.
    /// </summary>
    string? Backlogged { get; }
}

/// <param name="KeyHash">The hash of tenant and dedup key (0: no key): the log's deduplication id and the event's partition.</param>
/// <param name="Record">One landing record.</param>
public readonly record struct PublishedEvent(ulong KeyHash, string Tenant, ReadOnlyMemory<byte> Record);

/// <summary>The log did not confirm it stored the events (no quorum, a leader election, full): the request is refused with 503 and may be sent again.</summary>
public sealed class EventsNotStoredException(string message, Exception? inner = null) : Exception(message, inner);
