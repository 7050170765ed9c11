namespace Sluice.Core;

/// <summary>
/// A component of a running recipe (a pipeline, the scheduler, ...) failed, and the host stopped the run because of it.
/// The CLI prints the message on one line and exits with <see cref="ExitCode"/>.
/// </summary>
public sealed class ComponentFailedException : SluiceException
{
    /// <summary>The exit code of <c>sluice run</c> and <c>sluice demo</c> when a component failed (1 is a usage or configuration error).</summary>
    public const int ExitCode = 2;

    public ComponentFailedException(string recipe, string component, string reason, Exception inner)
        : base($"{recipe}: {component} failed: {reason}", inner)
    {
        Recipe = recipe;
        Component = component;
        Reason = reason;
    }

    public ComponentFailedException() { }

    public ComponentFailedException(string message) : base(message) { }

    public ComponentFailedException(string message, Exception inner) : base(message, inner) { }

    public string Recipe { get; } = "";

    public string Component { get; } = "";

    public string Reason { get; } = "";

    /// <summary>What the user reads: a <see cref="SluiceException"/>'s own message, else the error's type and message (its stack trace is for <c>--verbose</c>).</summary>
    public static string ReasonOf(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        // One line: the CLI prints it as one.
        return (error is SluiceException ? error.Message : $"{error.GetType().Name}: {error.Message}").ReplaceLineEndings(" ");
    }
}
