namespace Sluice.Connectors.Pull;

/// <summary>One record read from a source system: its id, its modification stamp (UTC) and its JSON as received.</summary>
public readonly record struct PulledRecord(string Id, DateTime Stamp, ReadOnlyMemory<byte> Json);

/// <summary>
/// A source system read incrementally by modification stamp (a Salesforce object, a PostgreSQL table): pages of
/// records changed at or after an instant, in ascending (stamp, id) order.
/// </summary>
public interface IIncrementalExtractor : IAsyncDisposable
{
    /// <summary>What is read, for messages (<c>Salesforce Attorney_Event__c at https://...</c>).</summary>
    string Describe { get; }

    /// <summary>Pages of records with stamp at or after <paramref name="since"/> (everything when null), ordered by stamp then id.</summary>
    IAsyncEnumerable<IReadOnlyList<PulledRecord>> ReadSinceAsync(DateTime? since, CancellationToken ct);
}
