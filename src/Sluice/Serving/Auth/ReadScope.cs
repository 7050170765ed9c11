using Microsoft.AspNetCore.Http;

namespace Sluice.Serving.Auth;

/// <summary>
/// The first steps of every read endpoint, in one place so no endpoint can skip one: a reader or admin token (401,
/// 403), only the endpoint's own query parameters (400), and whose rows the answer may hold: the token's own tenant, or
/// for an admin the one it names with <c>tenant=</c> (400 without one; 403 when another token names someone else).
/// </summary>
/// <param name="Noun">What the endpoint calls a tenant in its messages (<c>tenant</c>, <c>client</c>).</param>
/// <param name="Placeholder">What an admin is told to put after <c>tenant=</c>.</param>
/// <param name="Known">The query parameters the endpoint reads.</param>
/// <param name="EachOnce">Whether a parameter given twice is refused (400).</param>
public sealed record ReadScope(string Noun, string Placeholder, IReadOnlyList<string> Known, bool EachOnce)
{
    /// <summary>The tenant the answer is for, or null once the refusal has been written.</summary>
    public async Task<string?> ResolveAsync(HttpContext http, ServingContext context)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(context);
        var caller = context.Auth.Authenticate(http.Request, out var problem);
        if (caller is null)
        {
            await HttpResults.ErrorAsync(http, StatusCodes.Status401Unauthorized, problem!).ConfigureAwait(false);
            return null;
        }

        if (!caller.MayRead)
        {
            await HttpResults.ErrorAsync(http, StatusCodes.Status403Forbidden, "a writer token cannot query; use a reader or admin token").ConfigureAwait(false);
            return null;
        }

        var q = http.Request.Query;
        foreach (var key in q.Keys)
        {
            if (!Known.Contains(key, StringComparer.Ordinal))
            {
                await HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"unknown parameter '{key}' (known: {string.Join(", ", Known)})", key).ConfigureAwait(false);
                return null;
            }

            if (EachOnce && q[key].Count > 1)
            {
                await HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"parameter '{key}' is given {q[key].Count} times; give it once", key).ConfigureAwait(false);
                return null;
            }
        }

        var requested = q.TryGetValue("tenant", out var t) ? t.ToString() : null;
        if (caller.Role == TokenRole.Admin)
        {
            if (string.IsNullOrEmpty(requested))
            {
                await HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"an admin token must name the {Noun}: add tenant=<{Placeholder}>", "tenant").ConfigureAwait(false);
                return null;
            }

            return requested;
        }

        if (requested is not null && !string.Equals(requested, caller.Tenant, StringComparison.Ordinal))
        {
            await HttpResults.ErrorAsync(http, StatusCodes.Status403Forbidden, $"this token may only query its own {Noun}; leave tenant out or name the token's {Noun}", "tenant").ConfigureAwait(false);
            return null;
        }

        return caller.Tenant;
    }
}
