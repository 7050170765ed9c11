namespace Sluice.Core;

/// <summary>
/// A failure that waiting and retrying will not cure: a refused login, a missing database or table, a replication slot
/// that was lost. A component that retries transient failures (a server briefly down) lets this one through, and the
/// recipe host ends the run with it (<see cref="ComponentFailedException"/>). Its message says what, where and what to do.
/// </summary>
public sealed class FatalException : SluiceException
{
    public FatalException(string message) : base(message) { }

    public FatalException(string message, Exception inner) : base(message, inner) { }

    public FatalException() { }
}
