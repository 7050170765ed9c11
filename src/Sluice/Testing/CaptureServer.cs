using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sluice.Testing;

/// <summary>
/// The HTTP API an <c>http</c> sink posts to, played by <c>sluice test</c> on 127.0.0.1: it answers every POST 200 and
/// keeps the JSON objects of each body (an array of objects, one object, or NDJSON) as rows. A body sent again with an
/// <c>Idempotency-Key</c> already seen is answered but not kept again, as an idempotent API does: so the rows are
/// what the API holds, however often the sink had to send.
/// </summary>
public sealed partial class CaptureServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, bool> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<IReadOnlyDictionary<string, JsonElement>> _rows = new();

    private CaptureServer(WebApplication app) => _app = app;

    /// <summary>Where the recipe's sink is pointed: <c>http://127.0.0.1:port/received</c>.</summary>
    public required Uri Url { get; init; }

    /// <summary>The objects received, in arrival order.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, JsonElement>> Rows => [.. _rows];

    public static bool IsVariable(string text) => Variable().IsMatch(text);

    public static async Task<CaptureServer> StartAsync(CancellationToken ct)
    {
        CaptureServer? server = null;
        var app = await LoopbackServer.StartAsync(a => a.MapPost("/{**path}", (Delegate)((HttpContext context) => server!.ReceiveAsync(context))), ct).ConfigureAwait(false);
        server = new CaptureServer(app) { Url = new Uri(new Uri(app.Urls.First()), "/received") };
        return server;
    }

    private async Task<IResult> ReceiveAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        List<JsonElement> objects;
        try
        {
            objects = Objects(body);
        }
        catch (JsonException e)
        {
            return Results.BadRequest($"sluice test: the body is not JSON objects: {e.Message}");
        }

        var key = context.Request.Headers["Idempotency-Key"].ToString();
        if (key.Length > 0 && !_keys.TryAdd(key, true)) { return Results.Ok(); }
        foreach (var o in objects) { _rows.Enqueue(o.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal)); }
        return Results.Ok();
    }

    private static List<JsonElement> Objects(string body)
    {
        var text = body.TrimStart();
        if (text.StartsWith('['))
        {
            using var array = JsonDocument.Parse(text);
            return array.RootElement.EnumerateArray().Select(Object).ToList();
        }

        // One object, or NDJSON: one object per line.
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(line =>
        {
            using var doc = JsonDocument.Parse(line);
            return Object(doc.RootElement);
        }).ToList();
    }

    private static JsonElement Object(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object ? e.Clone() : throw new JsonException($"a {e.ValueKind} where an object was expected");

    /// <summary>A received value as a cell: text as itself, numbers and booleans as written, objects and arrays as their JSON.</summary>
    public static object? Cell(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.String => value.GetString(),
        _ => value.GetRawText(),
    };

    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Variable();
}
