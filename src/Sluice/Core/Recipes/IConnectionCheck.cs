namespace Sluice.Core.Recipes;

/// <summary>
/// A component that can check, before anything runs, that its server answers and holds what it will use
/// (<c>sluice validate --connect</c>): a source's tables, slot and rights, a step's dimension table, a sink's server.
/// </summary>
public interface IConnectionCheck
{
    /// <summary>
    /// Every problem found, each as <c>key: what is wrong</c> (the caller names the component); empty when all is well.
    /// A server that does not answer is a problem, never an exception.
    /// </summary>
    Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct);
}

/// <summary>How a connection check words a failure.</summary>
public static class ConnectionCheck
{
    /// <summary>The innermost cause, which names what happened (connection refused, no such host), rather than the wrapper's "an error occurred".</summary>
    public static string Cause(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        while (e.InnerException is not null) { e = e.InnerException; }
        return e is TimeoutException or TaskCanceledException ? "no answer within 5 s" : e.Message;
    }
}
