using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Sluice.Hosting;
using Sluice.Core.Text;

namespace Sluice.Serving.Management;

/// <summary>
/// What the operator routes (<c>/api/deadletters</c>, <c>/api/jobs</c>, <c>/api/backfills</c>, <c>/api/models</c>) share:
/// errors as <c>{ "error": ... }</c> with a 4xx status (bad input is never a 5xx), time stamps in UTC with a Z, strict
/// parsing of query parameters and JSON bodies, and who made a change.
/// </summary>
internal static class OperatorApi
{
    private static readonly JsonSerializerOptions Body = new(JsonSerializerDefaults.Web) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    public static IResult Error(int status, string error) => Results.Json(new { error }, statusCode: status);

    public static string? Utc(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string Day(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The recipe's host in this process, or the 404 that lists what runs here.</summary>
    public static (RecipeOperations? Host, IResult? NotFound) Recipe(ServingContext context, string recipe)
    {
        var running = context.Services.Running;
        if (running?.Find(recipe) is { } host) { return (host, null); }
        var names = running?.All.Select(h => h.Recipe.Name).ToList() ?? [];
        return (null, Error(404, $"recipe: '{recipe}' does not run in this process (running: {(names.Count == 0 ? "none" : string.Join(", ", names))})"));
    }

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, the default when absent; else the 400.</summary>
    public static (int Value, IResult? Bad) Int(HttpRequest request, string name, int fallback, int min, int max)
    {
        var text = request.Query[name].ToString();
        if (text.Length == 0) { return (fallback, null); }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? (value, null)
            : (0, Error(400, $"{name}: '{text}' is not a whole number from {min} to {max}"));
    }

    /// <summary>An instant: ISO 8601 (<c>2025-11-08T10:30:00Z</c>) or a date (its start, UTC); null when absent.</summary>
    public static (DateTimeOffset? Value, string? Bad) Instant(string? text, string name)
    {
        if (string.IsNullOrEmpty(text)) { return (null, null); }
        return Timestamps.TryParseDateOrInstant(text, out var value)
            ? (value, null)
            : (null, $"{name}: '{text}' is not a date (YYYY-MM-DD) or an ISO-8601 instant (2025-11-08T10:30:00Z)");
    }

    /// <summary>A day as <c>YYYY-MM-DD</c>.</summary>
    public static (DateOnly Value, string? Bad) Date(string? text, string name)
    {
        if (string.IsNullOrEmpty(text)) { return (default, $"{name}: missing (a date, YYYY-MM-DD)"); }
        return DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? (day, null)
            : (default, $"{name}: '{text}' is not a date (YYYY-MM-DD)");
    }

    /// <summary>The JSON body as <typeparamref name="T"/>; else why not (not JSON, a wrong type, an unknown field), for a 400.</summary>
    public static async Task<(T? Value, IResult? Bad)> ReadAsync<T>(HttpRequest request)
        where T : class
    {
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, Body, request.HttpContext.RequestAborted).ConfigureAwait(false);
            return value is null ? (null, Error(400, "body: a JSON object is needed")) : (value, null);
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } path ? $" at {path}" : "";
            return (null, Error(400, $"body{where}: {e.Message.Split(" Path:", 2)[0]}"));
        }
    }

    /// <summary>Who made a change, for the edit history: the management key, an admin token by id, or the console's session.</summary>
    public static string Who(HttpContext http, ServingContext context, string key)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            if (CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[7..].Trim()), Encoding.UTF8.GetBytes(key))) { return "management key"; }
            if (context.Auth.Authenticate(http.Request, out _) is { } caller) { return $"token {caller.TokenId}"; }
        }

        return "console session";
    }
}
