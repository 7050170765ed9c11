using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>
/// A small Salesforce-style REST API on 127.0.0.1 (Kestrel): the OAuth 2.0 client-credentials token endpoint and SOQL
/// queries over one object, filtered by <c>SystemModstamp &gt;= literal</c>, ordered by stamp and id, paged through
/// <c>nextRecordsUrl</c>. It can expire a token and fail a request, to test the client's recovery.
/// </summary>
internal sealed partial class FakeSalesforce : IAsyncDisposable
{
    public const string ClientId = "test-client";
    public const string Secret = "test-secret";

    private readonly WebApplication _app;
    private readonly List<Dictionary<string, object?>> _records = [];
    private readonly ConcurrentDictionary<string, List<Dictionary<string, object?>>> _cursors = new();
    private readonly Lock _gate = new();
    private int _tokens;

    private FakeSalesforce(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public int PageSize { get; set; } = 50;

    /// <summary>The SOQL of every query received.</summary>
    public ConcurrentQueue<string> Queries { get; } = new();

    /// <summary>The next query request answers 401 once (an expired session).</summary>
    public bool ExpireTokenOnce { get; set; }

    /// <summary>The next page request answers 503 this many times.</summary>
    public int FailNextRequests { get; set; }

    public int TokensIssued => _tokens;

    /// <summary>How long each query or page request waits before it answers (a slow API, to catch a pull mid-way).</summary>
    public TimeSpan PageDelay { get; set; }

    /// <summary>
    /// A recipe <paramref name="name"/> whose pipeline <c>accounts</c> pulls <paramref name="obj"/> from this API every
    /// second: <paramref name="source"/> holds the source's other settings and <paramref name="sinks"/> the pipeline's
    /// sinks, if any, each as YAML lines without the indentation they take under <c>source:</c> and <c>sinks:</c>.
    /// </summary>
    public string PullRecipe(string name, string obj, string source, string sinks = "")
    {
        static string Indent(string yaml) => string.Concat(yaml.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "      " + l + "\n"));
        return $"name: {name}\npipelines:\n  accounts:\n    source:\n      type: salesforce\n      login_url: {Url}\n      object: {obj}\n      poll_interval: 1s\n"
            + Indent(source) + (sinks.Length == 0 ? "" : "    sinks:\n" + Indent(sinks));
    }

    public static async Task<FakeSalesforce> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeSalesforce(app);
        app.MapPost("/services/oauth2/token", (Delegate)fake.TokenAsync);
        app.MapGet("/services/data/v59.0/query", (Delegate)fake.Query);
        app.MapGet("/services/data/v59.0/query/{cursor}", (Delegate)fake.Next);
        await app.StartAsync();
        fake.Url = app.Urls.First();
        return fake;
    }

    public void Add(string id, DateTime stamp, IDictionary<string, object?> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var record = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["attributes"] = new Dictionary<string, string> { ["type"] = "Attorney_Event__c", ["url"] = $"/services/data/v59.0/sobjects/Attorney_Event__c/{id}" },
            ["Id"] = id,
            ["SystemModstamp"] = stamp.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in fields) { record[k] = v; }
        lock (_gate)
        {
            _records.RemoveAll(r => (string)r["Id"]! == id);
            _records.Add(record);
        }
    }

    private async Task<IResult> TokenAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        if (form["grant_type"] != "client_credentials" || form["client_id"] != ClientId || form["client_secret"] != Secret)
        {
            return Results.Json(new { error = "invalid_client", error_description = "invalid client credentials" }, statusCode: 400);
        }

        var n = Interlocked.Increment(ref _tokens);
        return Results.Json(new { access_token = $"token-{n}", instance_url = Url, token_type = "Bearer" });
    }

    private async Task<IResult> Query(HttpContext context, string q)
    {
        if (Refuse(context) is { } refused) { return refused; }
        if (PageDelay > TimeSpan.Zero) { await Task.Delay(PageDelay); }
        Queries.Enqueue(q);
        var since = SinceRegex().Match(q) is { Success: true } m
            ? DateTime.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal)
            : DateTime.MinValue;
        if (!q.Contains("ORDER BY SystemModstamp ASC, Id ASC", StringComparison.Ordinal))
        {
            return Results.Json(new[] { new { message = "expected ORDER BY SystemModstamp ASC, Id ASC", errorCode = "MALFORMED_QUERY" } }, statusCode: 400);
        }

        List<Dictionary<string, object?>> rows;
        lock (_gate)
        {
            rows = _records.Where(r => Stamp(r) >= since).OrderBy(Stamp).ThenBy(r => (string)r["Id"]!, StringComparer.Ordinal).ToList();
        }

        var cursor = Guid.NewGuid().ToString("N");
        _cursors[cursor] = rows;
        return Page(cursor, 0, rows);
    }

    private async Task<IResult> Next(HttpContext context, string cursor)
    {
        if (Refuse(context) is { } refused) { return refused; }
        if (PageDelay > TimeSpan.Zero) { await Task.Delay(PageDelay); }
        var dash = cursor.LastIndexOf('-');
        var rows = _cursors[cursor[..dash]];
        return Page(cursor[..dash], int.Parse(cursor[(dash + 1)..], CultureInfo.InvariantCulture), rows);
    }

    private IResult? Refuse(HttpContext context)
    {
        var auth = context.Request.Headers.Authorization.ToString();
        if (!auth.StartsWith("Bearer token-", StringComparison.Ordinal))
        {
            return Results.Json(new[] { new { message = "Session expired or invalid", errorCode = "INVALID_SESSION_ID" } }, statusCode: 401);
        }

        if (ExpireTokenOnce)
        {
            ExpireTokenOnce = false;
            return Results.Json(new[] { new { message = "Session expired or invalid", errorCode = "INVALID_SESSION_ID" } }, statusCode: 401);
        }

        if (FailNextRequests > 0)
        {
            FailNextRequests--;
            return Results.StatusCode((int)HttpStatusCode.ServiceUnavailable);
        }

        return null;
    }

    private IResult Page(string cursor, int offset, List<Dictionary<string, object?>> rows)
    {
        var page = rows.Skip(offset).Take(PageSize).ToList();
        var done = offset + page.Count >= rows.Count;
        var body = new Dictionary<string, object?> { ["totalSize"] = rows.Count, ["done"] = done, ["records"] = page };
        if (!done) { body["nextRecordsUrl"] = $"/services/data/v59.0/query/{cursor}-{offset + page.Count}"; }
        return Results.Text(JsonSerializer.Serialize(body), "application/json");
    }

    private static DateTime Stamp(Dictionary<string, object?> r) =>
        DateTime.Parse(((string)r["SystemModstamp"]!).Replace("+0000", "Z", StringComparison.Ordinal), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [GeneratedRegex(@"SystemModstamp >= (\S+Z)")]
    private static partial Regex SinceRegex();
}
