using System.Net;
using System.Text.RegularExpressions;

namespace Sluice.Connectors.ClickHouse;

/// <summary>A failed ClickHouse request; <see cref="Transient"/> when trying again may help (server down, overloaded, timeouts).</summary>
public sealed class ClickHouseException(string message, bool transient, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}

/// <summary>
/// ClickHouse's HTTP interface, one statement per request (18.16 takes no multi-statement requests): queries and DDL
/// go in the POST body, inserts name their query in the URL and send RowBinary rows as the body, and a statement that
/// reads rows sent with it gets them as external data (a multipart body).
/// </summary>
public sealed partial class ClickHouseClient : IDisposable
{
    /// <summary>Refusals of requests ClickHouse never read (<see cref="ClickHouseFailures.RefusedUnread"/>) taken as transient in a row.</summary>
    private const int MaxRefusedUnreadInARow = 3;

    private readonly HttpClient _http;
    private readonly Uri _url;
    private int _refusedUnreadInARow;

    public ClickHouseClient(Uri url, TimeSpan timeout)
    {
        _url = url;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = TimeSpan.FromSeconds(5) }) { Timeout = timeout };
    }

    public async Task<string> QueryAsync(string sql, CancellationToken ct)
    {
        using var content = new StringContent(sql);
        return await SendAsync(_url, content, sql, ct).ConfigureAwait(false);
    }

    public async Task InsertAsync(string qualifiedTable, IEnumerable<string> columns, ReadOnlyMemory<byte> rows, CancellationToken ct)
    {
        var query = $"INSERT INTO {qualifiedTable} ({string.Join(", ", columns.Select(Quote))}) FORMAT RowBinary";
        var url = new Uri(_url, "?query=" + Uri.EscapeDataString(query));
        using var content = new ReadOnlyMemoryContent(rows);
        await SendAsync(url, content, query, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="sql"/> with <paramref name="rows"/> (RowBinary of <paramref name="structure"/>) readable as
    /// the temporary table <paramref name="name"/> (ClickHouse's "external data"): staging and statement in one request.
    /// Everything goes in the multipart body, the statement included, so no URL grows with the columns
    /// (<see cref="ClickHouseExternalData"/>: why not .NET's multipart content).
    /// </summary>
    public async Task QueryWithTableAsync(string sql, string name, string structure, ReadOnlyMemory<byte> rows, CancellationToken ct)
    {
        using var content = new ClickHouseExternalData(sql, name, structure, rows);
        await SendAsync(_url, content, sql, ct).ConfigureAwait(false);
    }

    private async Task<string> SendAsync(Uri url, HttpContent content, string what, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.PostAsync(url, content, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new ClickHouseException($"ClickHouse at {_url} did not answer: {e.Message}", transient: true, e);
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new ClickHouseException($"ClickHouse at {_url} did not answer within {_http.Timeout.TotalSeconds:0} s", transient: true, e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                Volatile.Write(ref _refusedUnreadInARow, 0);
                return body;
            }

            throw Rejected(response, body, what);
        }
    }

    /// <summary>
    /// The failure a non-2xx answer means: the exception code from ClickHouse's header (else its message), and the whole
    /// answer in the message (status, reason, the ClickHouse and connection headers, the body), so the log says why.
    /// </summary>
    private ClickHouseException Rejected(HttpResponseMessage response, string body, string what)
    {
        var header = response.Headers.TryGetValues("X-ClickHouse-Exception-Code", out var values) ? values.FirstOrDefault() : null;
        var code = int.TryParse(header, System.Globalization.CultureInfo.InvariantCulture, out var c) ? c
            : ErrorCode().Match(body) is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
        var unread = ClickHouseFailures.RefusedUnread(response.StatusCode, header, body);
        // A request the HTTP server itself cannot parse (a URL too long) is refused the same way each time: only a
        // few refusals in a row are taken for the stray bytes of a connection, then it stops the sink.
        var refusals = unread ? Interlocked.Increment(ref _refusedUnreadInARow) : 0;
        var transient = (unread && refusals <= MaxRefusedUnreadInARow) || ClickHouseFailures.IsTransient(response.StatusCode, code);
        var shown = what.Length > 200 ? what[..200] + "..." : what;
        var headers = string.Join("; ", response.Headers.Where(h => h.Key.StartsWith("X-ClickHouse", StringComparison.OrdinalIgnoreCase) || h.Key is "Connection")
            .Select(h => $"{h.Key}: {string.Join(",", h.Value)}"));
        var text = !unread ? body.Trim()
            : transient ? "no message: refused by the server's HTTP layer before ClickHouse read the query (the connection is dropped; tried again on another)"
            : $"no message: refused by the server's HTTP layer before ClickHouse read the query, {refusals} times in a row: the request itself is malformed for it";
        return new ClickHouseException($"ClickHouse rejected '{shown}': HTTP {(int)response.StatusCode} {response.ReasonPhrase} [{headers}]: {text}", transient);
    }

    /// <summary>A string literal.</summary>
    public static string Literal(string text) => "'" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    public static string Quote(string name) => "`" + name.Replace("`", "\\`", StringComparison.Ordinal) + "`";

    public void Dispose() => _http.Dispose();

    [GeneratedRegex(@"Code:\s*(\d+)")]
    private static partial Regex ErrorCode();
}
