using System.Net;
using Sluice.Connectors.Http;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// What is transient in a ClickHouse request: no answer (refused, reset, past the timeout) or an answer that says
/// "later" (5xx, 429), unless its exception code says the request itself is wrong (syntax, unknown table or column, a
/// bad value): ClickHouse answers those with a 500 too, and retrying them only repeats them.
/// </summary>
public static class ClickHouseFailures
{
    // Codes that mean the request itself is wrong (syntax, unknown table or column, bad value): retrying cannot help.
    private static readonly HashSet<int> Permanent = [6, 16, 26, 27, 36, 38, 41, 43, 44, 47, 53, 60, 62, 69, 70, 72, 117, 130, 131, 241];

    /// <summary>An answer of <paramref name="status"/> with ClickHouse's exception <paramref name="code"/> (-1: none in the body).</summary>
    public static bool IsTransient(HttpStatusCode status, int code) =>
        !Permanent.Contains(code) && ((int)status >= 500 || status == HttpStatusCode.TooManyRequests);

    /// <summary>
    /// A 400 with no body and no exception code: not ClickHouse's answer (it always names its exception) but its HTTP
    /// server's, refusing a request it could not parse, which ClickHouse never saw, so nothing of it was done and the
    /// server closes the connection. Sending it again, on another connection, is safe.
    /// </summary>
    public static bool RefusedUnread(HttpStatusCode status, string? exceptionCode, string body) =>
        status == HttpStatusCode.BadRequest && exceptionCode is null && string.IsNullOrWhiteSpace(body);

    /// <summary>A failed request as <see cref="ClickHouseClient"/> reports it; no answer at all is always transient.</summary>
    public static bool IsTransient(Exception error) => error is ClickHouseException { Transient: true } || (error is not ClickHouseException && HttpFailures.IsTransient(error));
}
