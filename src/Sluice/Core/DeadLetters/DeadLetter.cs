namespace Sluice.Core.DeadLetters;

/// <summary>A record or delivery that could not be processed, kept with where it came from and why.</summary>
/// <param name="Source">Who rejected it, as <c>kind:recipe/name</c> (for example <c>files:vehicle-files/vehicle_events</c>); replay is routed by it.</param>
/// <param name="Position">Where in the source: file, line, record index, field.</param>
public sealed record DeadLetter(long Id, string Source, string Position, string Reason, string? Payload, DateTimeOffset CreatedAt, string Status, DateTimeOffset? ReplayedAt);
