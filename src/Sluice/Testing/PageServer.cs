using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sluice.Testing;

/// <summary>
/// A Salesforce-style REST API played by <c>sluice test</c> on 127.0.0.1 for a case's <c>pages:</c> inputs: it issues
/// a token to any client credentials, and answers a SOQL query on an object with that object's pages, in order,
/// chained by <c>nextRecordsUrl</c> as Salesforce does. It filters nothing: the pages are exactly what the source is
/// given, and a step's pages replace the previous step's for their object.
/// </summary>
public sealed partial class PageServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, IReadOnlyList<JsonArray>> _pages = new(StringComparer.OrdinalIgnoreCase);

    private PageServer(WebApplication app) => _app = app;

    /// <summary>The login (and instance) URL the recipe's source is pointed at.</summary>
    public required Uri Url { get; init; }

    public static async Task<PageServer> StartAsync(CancellationToken ct)
    {
        PageServer? server = null;
        var app = await LoopbackServer.StartAsync(a =>
        {
            a.MapPost("/services/oauth2/token", () => Results.Json(new { access_token = "sluice-test", instance_url = server!.Url.ToString().TrimEnd('/'), token_type = "Bearer" }));
            a.MapGet("/services/data/{version}/query", (string version, string q) => server!.Page(version, From().Match(q) is { Success: true } m ? m.Groups[1].Value : "", 0));
            a.MapGet("/services/data/{version}/query/{cursor}", (string version, string cursor) =>
            {
                var dash = cursor.LastIndexOf('-');
                return server!.Page(version, cursor[..dash], int.Parse(cursor[(dash + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            });
        }, ct).ConfigureAwait(false);
        server = new PageServer(app) { Url = new Uri(app.Urls.First()) };
        return server;
    }

    /// <summary>Serves <paramref name="path"/> (a page file, or a folder of them in name order) as the pages of <paramref name="sObject"/>.</summary>
    public void Serve(string sObject, string path, string caseFile, int line)
    {
        var files = File.Exists(path) ? [path] : Directory.GetFiles(path, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        _pages[sObject] = files.Select(f => Records(f, caseFile, line)).ToList();
    }

    /// <summary>A page file: an array of records, or a page as Salesforce sends it (its <c>records</c>).</summary>
    private static JsonArray Records(string file, string caseFile, int line)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(file));
        }
        catch (JsonException e)
        {
            throw new FixtureException(caseFile, line, $"pages: {TestCase.Display(file)} is not JSON: {e.Message}");
        }

        return (node is JsonObject page ? page["records"] : node) as JsonArray
            ?? throw new FixtureException(caseFile, line, $"pages: {TestCase.Display(file)} is neither an array of records nor a page with records: [...]");
    }

    private IResult Page(string version, string sObject, int index)
    {
        var pages = _pages.TryGetValue(sObject, out var p) ? p : [];
        var records = index < pages.Count ? pages[index] : [];
        var done = index + 1 >= pages.Count;
        var body = new JsonObject
        {
            ["totalSize"] = pages.Sum(x => x.Count),
            ["done"] = done,
            ["records"] = records.DeepClone(),
        };
        if (!done) { body["nextRecordsUrl"] = $"/services/data/{version}/query/{sObject}-{index + 1}"; }
        return Results.Text(body.ToJsonString(), "application/json");
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);

    [GeneratedRegex(@"\bFROM\s+(\w+)", RegexOptions.IgnoreCase)]
    private static partial Regex From();
}
