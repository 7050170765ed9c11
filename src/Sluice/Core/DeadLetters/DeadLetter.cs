namespace Sluice.Core.DeadLetters;

/// <summary>A record or delivery that could not be processed, kept with where it came from and why.</summary>
/// <param name="Source">Who rejected it, as <c>kind:recipe/name</c> (for example <c>files:vehicle-files/vehicle_events</c>); replay is routed by it.</param>
/// <param name="Position">Where in the source: file, line, record index, field.</param>
public sealed record DeadLetter(long Id, string Source, string Position, string Reason, string? Payload, DateTimeOffset CreatedAt, string Status, DateTimeOffset? ReplayedAt)
{
    /// <summary>Why an operator discarded it (status <c>discarded</c>); null otherwise.</summary>
    public string? DiscardReason { get; init; }

    /// <summary>The recipe whose component rejected it: the letter's source is <c>kind:recipe</c> or <c>kind:recipe/part</c>.</summary>
    public string Recipe => RecipeOf(Source);

    public static string RecipeOf(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var colon = source.IndexOf(':', StringComparison.Ordinal);
        var rest = colon >= 0 ? source[(colon + 1)..] : source;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? rest[..slash] : rest;
    }
}
