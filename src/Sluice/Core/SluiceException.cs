namespace Sluice.Core;

/// <summary>An error meant for the user: its message says what, where and why, and the CLI prints it without a stack trace.</summary>
public class SluiceException : Exception
{
    public SluiceException(string message) : base(message) { }

    public SluiceException(string message, Exception inner) : base(message, inner) { }

    public SluiceException() { }
}
