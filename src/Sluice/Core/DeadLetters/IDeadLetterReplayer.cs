namespace Sluice.Core.DeadLetters;

/// <summary>
/// Implemented by a running component that can take back what it once rejected (<c>sluice dlq replay</c>).
/// A letter is routed to the first component whose <see cref="CanReplay"/> accepts its source.
/// </summary>
public interface IDeadLetterReplayer
{
    bool CanReplay(DeadLetter letter);

    /// <summary>Processes the letter again. Returns null on success (the letter is then marked replayed), else the new reason.</summary>
    Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct);
}
