using Sluice.Connectors.Pull;
using Sluice.Core.Pipeline;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// Where the recipe's tables live: the embedded warehouse (<see cref="LakeReminderWarehouse"/>) or PostgreSQL
/// (<see cref="PostgresReminderWarehouse"/>). Appends are atomic with the checkpoint of the input they cover, so a
/// crash and replay lands nothing twice.
/// </summary>
public interface IReminderWarehouse : IAsyncDisposable
{
    /// <summary>What and where, for messages (<c>lake zone reminders</c>, <c>PostgreSQL schema repeat_reminder on ...</c>).</summary>
    string Describe { get; }

    /// <summary>The SQL name of a table or view, as queries spell it (<c>reminders.attorney_events</c>).</summary>
    string Name(string table);

    Task InitialiseAsync(CancellationToken ct);

    Task<string?> ReadCheckpointAsync(string key, CancellationToken ct);

    /// <summary>
    /// Lands a normalised batch and its refused records (as dead letters of <paramref name="letterSource"/>) together
    /// with <paramref name="checkpointValue"/> under <paramref name="checkpointKey"/>, all or nothing. With
    /// <paramref name="fence"/> (a pull on a worker of a cluster) nothing lands unless the pull's lease is still this
    /// worker's: checked inside the one transaction when the store is the cluster's shared metadata store (the lake),
    /// just before it otherwise (a PostgreSQL store in its own database).
    /// </summary>
    Task AppendAsync(NormalisedBatch batch, string letterSource, string checkpointKey, string checkpointValue, IPullFence? fence, CancellationToken ct);

    /// <summary>
    /// Lands a batch of a cluster's shared log (a JetStream stream every worker reads) once, whichever worker it comes
    /// to: the events' sequences are recorded under <paramref name="sink"/> (the sink without the worker) in the
    /// transaction of the rows, and the events some worker committed before are left out
    /// (<paramref name="notCommitted"/> gives the batch without their rows). A worker that dies after the commit and
    /// before its acknowledgement leaves the events to be delivered again, to any worker, which then lands none of them
    /// twice. Returns how many of the batch's events were committed already.
    /// </summary>
    Task<long> AppendOnceAsync(LogSequences events, string sink, Func<IReadOnlyList<SequenceRange>, NormalisedBatch> notCommitted, string letterSource, string checkpointKey, string checkpointValue, CancellationToken ct);

    /// <summary>Saves the <c>vw_reminder_ready</c> view of the rule and returns the reminders due at <paramref name="asOf"/>.</summary>
    Task<IReadOnlyList<DueReminder>> DueAsync(ReminderRule rule, DateTimeOffset asOf, CancellationToken ct);

    /// <summary>Appends outcomes to the <c>attorney_reminder</c> log and marks them published in the outbox.</summary>
    Task PublishAsync(ReminderOutbox outbox, CancellationToken ct);
}
