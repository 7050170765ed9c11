namespace Sluice.Cli;

/// <summary>Exit codes besides 0 (done), 1 (an error, said on stderr) and 2 (a component failed for good), for scripts that tell outcomes apart.</summary>
internal static class ExitCodes
{
    /// <summary><c>query</c> printed only the first <c>--max-rows</c> rows of a longer result, and the limit was the default one.</summary>
    public const int Cut = 3;

    /// <summary>The work finished but some of its rows went to the dead-letter store, and <c>--fail-on-dead-letters</c> was given.</summary>
    public const int DeadLettered = 4;

    /// <summary>A second Ctrl-C (or SIGTERM) during a stop: exited at once without waiting for the drain (128 + SIGINT, as a shell reports Ctrl-C).</summary>
    public const int Interrupted = 130;

    /// <summary>
    /// After a stop's host deadlines (<see cref="Sluice.Hosting.RecipeHost.StopsClosedBy"/>) this much more for the
    /// rest of the exit (the engine's stores closing) before the process exits without it.
    /// </summary>
    public static readonly TimeSpan ExitGrace = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Runs after the first stop signal: should the exit overrun every stopping host's deadline by <see cref="ExitGrace"/>
    /// (a part blocked where no bound reaches it), exits 1 naming what is still stopping. Commands that run no host
    /// are left to their own bounds.
    /// </summary>
    public static void Watchdog()
    {
        while (true)
        {
            Thread.Sleep(TimeSpan.FromSeconds(1));
            if (Sluice.Hosting.RecipeHost.StopsClosedBy is { } by && DateTimeOffset.UtcNow > by + ExitGrace)
            {
                var left = Sluice.Hosting.RecipeHost.StillStopping();
                Console.Error.WriteLine($"sluice: still stopping {ExitGrace.TotalSeconds:0} s past the stop's bound ({(left.Count == 0 ? "closing" : string.Join(", ", left))}); exiting without waiting further: anything not committed is read again at the next start");
                Environment.Exit(1);
            }
        }
    }

    /// <summary>
    /// Exits now with <see cref="Interrupted"/>, saying what the stop still waited for. Safe as a crash is: a batch not
    /// checkpointed is given again by its source at the next start, and each checkpoint is one transaction.
    /// </summary>
    public static void Forced(IReadOnlyList<string> abandoned)
    {
        var what = abandoned.Count == 0 ? "nothing was still stopping" : "abandoned: " + string.Join(", ", abandoned);
        Console.Error.WriteLine($"sluice: second stop signal, exiting now ({what}); anything not committed is read again at the next start");
        Environment.Exit(Interrupted);
    }
}
