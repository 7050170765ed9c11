using System.CommandLine;
using Sluice.Core.DeadLetters;

namespace Sluice.Cli;

/// <summary>
/// What the commands that run work through sinks (<c>backfill</c>, <c>job run</c>, <c>run --once</c>, <c>dlq replay</c>)
/// share about dead letters: the rows that went there are said in the summary, and <c>--fail-on-dead-letters</c> turns
/// them into a non-zero exit.
/// </summary>
internal static class DeadLetterReport
{
    public static Option<bool> FailOption() => new("--fail-on-dead-letters")
    {
        Description = $"Exit {ExitCodes.DeadLettered} when any row went to the dead-letter store (the summary always says how many)",
    };

    /// <summary>Prints the tally's line unless the summary said it already, and gives the exit code.</summary>
    public static async Task<int> FinishAsync(DeadLetterTally tally, bool failOnDeadLetters, bool alreadySaid = false)
    {
        ArgumentNullException.ThrowIfNull(tally);
        if (tally.Describe() is not { } lettered)
        {
            return 0;
        }

        if (!alreadySaid)
        {
            await Console.Out.WriteLineAsync($"{lettered} went to the dead-letter store; see ./sluice dlq list").ConfigureAwait(false);
        }

        return failOnDeadLetters ? ExitCodes.DeadLettered : 0;
    }
}
