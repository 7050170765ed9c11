using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Sluice.Serving;

/// <summary>Error answers in one shape: <c>{"error": "...", "parameter": "..."}</c>, with Retry-After where the client should come back.</summary>
public static class HttpResults
{
    public static async Task ErrorAsync(HttpContext context, int status, string message, string? parameter = null, int? retryAfterSeconds = null, IReadOnlyDictionary<string, object>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json; charset=utf-8";
        if (retryAfterSeconds is { } retry)
        {
            response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (status == StatusCodes.Status401Unauthorized)
        {
            response.Headers.WWWAuthenticate = "Bearer";
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("error", message);
            if (parameter is not null) { json.WriteString("parameter", parameter); }
            foreach (var (key, value) in extra ?? new Dictionary<string, object>())
            {
                json.WritePropertyName(key);
                JsonSerializer.Serialize(json, value);
            }

            json.WriteEndObject();
        }

        await response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), context.RequestAborted).ConfigureAwait(false);
    }
}
