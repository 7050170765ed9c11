namespace Sluice.Cli;

/// <summary>Exit codes besides 0 (done), 1 (an error, said on stderr) and 2 (a component failed for good), for scripts that tell outcomes apart.</summary>
internal static class ExitCodes
{
    /// <summary><c>query</c> printed only the first <c>--max-rows</c> rows of a longer result, and the limit was the default one.</summary>
    public const int Cut = 3;

    /// <summary>The work finished but some of its rows went to the dead-letter store, and <c>--fail-on-dead-letters</c> was given.</summary>
    public const int DeadLettered = 4;
}
