using System.Text.Json;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Where a <c>postgres_backfill</c> run in cluster mode stands, kept in the cluster's shared store (a checkpoint under
/// the job's name, <see cref="KeyOf"/>): the backfill's id (part of every page's message id in JetStream), its range,
/// the paging key its last stored page ended at, and whether it is done. Written after each page JetStream stored,
/// while the run's lease row is locked (<c>JobFence</c>); the run that takes over an interrupted backfill (trigger
/// <c>rerun</c>) goes on after <see cref="After"/> under the same id.
/// </summary>
public sealed record PgBackfillProgress(string Id, DateTimeOffset From, DateTimeOffset To, long? After, long Rows, int Pages, bool Done)
{
    /// <summary>The checkpoint key of job <paramref name="job"/> of recipe <paramref name="recipe"/>.</summary>
    public static string KeyOf(string recipe, string job) => $"job:{recipe}/{job}:backfill";

    /// <summary>A new backfill of a range: an id no other backfill has (a message id names it; a second backfill of the same range lands again, as in one process).</summary>
    public static PgBackfillProgress Start(DateTimeOffset from, DateTimeOffset to) => new(Guid.NewGuid().ToString("N")[..16], from, to, null, 0, 0, false);

    public static PgBackfillProgress? Load(CheckpointStore store, string key)
    {
        ArgumentNullException.ThrowIfNull(store);
        return store.Get(key) is { } text ? JsonSerializer.Deserialize<PgBackfillProgress>(text) : null;
    }

    public void Save(CheckpointStore store, string key)
    {
        ArgumentNullException.ThrowIfNull(store);
        store.Set(key, JsonSerializer.Serialize(this));
    }
}
