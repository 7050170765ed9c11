namespace Sluice.Core.DeadLetters;

/// <summary>Replays one letter with the first component that accepts it and records the result in the store.</summary>
public static class DeadLetterReplays
{
    /// <summary>Null when the letter was replayed (and marked so); otherwise why not (kept as its newest reason).</summary>
    public static async Task<string?> ReplayOneAsync(DeadLetterStore store, IEnumerable<IDeadLetterReplayer> replayers, DeadLetter letter, string recipe, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(replayers);
        ArgumentNullException.ThrowIfNull(letter);
        var replayer = replayers.FirstOrDefault(r => r.CanReplay(letter))
            ?? throw new SluiceException($"letter {letter.Id}: nothing in recipe '{recipe}' can replay source '{letter.Source}'.");
        var error = await replayer.ReplayAsync(letter, ct).ConfigureAwait(false);
        if (error is null)
        {
            store.MarkReplayed(letter.Id);
        }
        else
        {
            store.UpdateReason(letter.Id, error);
        }

        return error;
    }
}
