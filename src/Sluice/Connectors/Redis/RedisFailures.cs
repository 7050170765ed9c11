using StackExchange.Redis;

namespace Sluice.Connectors.Redis;

/// <summary>
/// What is transient in a Redis call: the connection (lost, refused, timed out), or a server that says "later" while it
/// loads its data after a restart (<c>LOADING</c>) or runs a long script (<c>BUSY</c>). Any other server error (a
/// wrong type, a script error, <c>NOAUTH</c>) is an answer about the request: retrying only repeats it.
/// </summary>
public static class RedisFailures
{
    public static bool IsTransient(Exception error) =>
        error is RedisConnectionException or RedisTimeoutException ||
        (error is RedisServerException && (error.Message.StartsWith("LOADING", StringComparison.Ordinal) || error.Message.StartsWith("BUSY", StringComparison.Ordinal)));
}
