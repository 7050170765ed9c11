using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Sluice.Serving.Auth;
using Sluice.Serving.Management;
using Sluice.Serving.OpenApi;

namespace Sluice.Serving.Console;

/// <summary>
/// The operations console under <c>/ui/</c>: a login form, the pages (one HTML shell; <c>app.js</c> draws each page
/// from the JSON routes under <c>/api/</c>) and their static files. Access is <see cref="ManagementEndpoints.Allowed"/>:
/// an admin's session cookie (set by the login form) or an admin bearer token. A page asked for without either goes to
/// the login form; a reader's or writer's token is refused there with what to do instead.
/// </summary>
internal static class ConsoleEndpoints
{
    /// <summary>The pages, by the first segment of their path (<c>/ui/pipeline/&lt;recipe&gt;/&lt;pipeline&gt;</c>).</summary>
    private static readonly HashSet<string> Pages = new(["", "pipeline", "cdc", "files", "deadletters", "jobs", "tokens", "workers"], StringComparer.Ordinal);

    /// <summary>The login form's body at most: a token is under 100 characters.</summary>
    private const int MaxLoginBody = 4096;

    internal static void Map(WebApplication app, ServingContext context, string key)
    {
        var log = context.Services.Logging.CreateLogger("Sluice.Console");
        // Routing matches /ui/ here too: only the bare /ui is sent on to /ui/ (relative links need the slash).
        app.MapGet("/ui", (HttpContext http) => http.Request.Path.Value == "/ui" ? Results.Redirect("/ui/") : Page(http, context, key, "")).ExcludeFromDescription();
        app.MapGet("/ui/assets/{**path}", (HttpContext http, string path) => Asset(http, path)).ExcludeFromDescription();
        app.MapGet("/ui/login", (HttpContext http) => LoginPage(http, null, StatusCodes.Status200OK))
            .WithSummary("The console's login form: paste an admin token (sluice tokens create --role admin).").Access(ApiAccess.Anyone);
        app.MapPost("/ui/login", (HttpContext http, CancellationToken _) => LoginAsync(http, context, log))
            .WithSummary("Opens a console session for an admin token (form field token); sets an HttpOnly, SameSite=Strict session cookie.").Access(ApiAccess.Anyone);
        app.MapPost("/ui/logout", (HttpContext http) => Logout(http, context, key))
            .WithSummary("Ends the console session (needs the session's X-Sluice-Csrf header).").Access(ApiAccess.Management);
        app.MapGet("/ui/{**page}", (HttpContext http, string? page) => Page(http, context, key, page ?? ""))
            .WithSummary("A console page: overview, pipeline/<recipe>/<pipeline>, cdc, files, deadletters, jobs, tokens. Admin session or token.").Access(ApiAccess.Management);
    }

    private static IResult Asset(HttpContext http, string path)
    {
        if (ConsoleAssets.Find(path) is not { } bytes || path.EndsWith(".html", StringComparison.Ordinal)) { return Results.NotFound(); }
        Secure(http);
        // Assets change only with the binary; an hour of caching spares a phone the reload of every page.
        http.Response.Headers.CacheControl = "private, max-age=3600";
        return Results.Bytes(bytes, ConsoleAssets.ContentType(path));
    }

    private static IResult Page(HttpContext http, ServingContext context, string key, string page)
    {
        var first = page.Split('/', 2)[0];
        if (!Pages.Contains(first)) { return Html(http, Message("Not found", $"There is no console page '/ui/{page}'.", "Go to the overview"), StatusCodes.Status404NotFound); }

        switch (ManagementEndpoints.Allowed(http, context, key))
        {
            case null:
                break;
            case IStatusCodeHttpResult { StatusCode: StatusCodes.Status401Unauthorized }:
                return Results.Redirect("/ui/login?next=" + Uri.EscapeDataString("/ui/" + page));
            default:
                var text = context.Auth.Authenticate(http.Request, out _) is { } caller
                    ? ManagementEndpoints.TenantScoped(caller)
                    : "The console needs a process-wide admin token: sluice tokens create --role admin";
                return Html(http, Message("Admins only", text, "Log in with another token"), StatusCodes.Status403Forbidden);
        }

        var csrf = context.Sessions.Find(http.Request.Cookies[ConsoleSessions.CookieName])?.Csrf ?? "";
        return Html(http, ConsoleAssets.Text("index.html").Replace("{{csrf}}", csrf, StringComparison.Ordinal), StatusCodes.Status200OK);
    }

    private static async Task<IResult> LoginAsync(HttpContext http, ServingContext context, ILogger log)
    {
        // The session cookie is SameSite=Strict, but the login itself must not be postable from another site either
        // (it would log the browser into someone else's session).
        if (FromAnotherSite(http.Request))
        {
            return LoginPage(http, "This login form was posted from another site; open the console's own /ui/login.", StatusCodes.Status403Forbidden);
        }

        if (!http.Request.HasFormContentType || http.Request.ContentLength is null or > MaxLoginBody)
        {
            return LoginPage(http, "Send the form: a token field, at most a few hundred characters.", StatusCodes.Status400BadRequest);
        }

        var form = await http.Request.ReadFormAsync(http.RequestAborted).ConfigureAwait(false);
        var token = form["token"].ToString().Trim();
        var next = form["next"].ToString() is { } n && n.StartsWith("/ui/", StringComparison.Ordinal) && !n.StartsWith("/ui//", StringComparison.Ordinal) ? n : "/ui/";
        var caller = token.Length == 0 ? null : context.Auth.Resolve(token);
        if (caller is null)
        {
            ConsoleLog.LoginRefused(log, "unknown or revoked token");
            return LoginPage(http, token.Length == 0 ? "Paste a token." : "Unknown or revoked token.", StatusCodes.Status401Unauthorized, next);
        }

        if (caller.Role != TokenRole.Admin)
        {
            ConsoleLog.LoginRefused(log, $"token {caller.TokenId} is a {caller.Role.ToString().ToLowerInvariant()} token");
            return LoginPage(http, ManagementEndpoints.TenantScoped(caller), StatusCodes.Status403Forbidden, next);
        }

        var session = context.Sessions.Open(caller.TokenId);
        http.Response.Cookies.Append(ConsoleSessions.CookieName, session.Id, new CookieOptions
        {
            HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = "/", IsEssential = true,
        });
        ConsoleLog.LoggedIn(log, caller.TokenId);
        return Results.Redirect(next);
    }

    /// <summary>What the browser says of where the form came from: Sec-Fetch-Site when it sends it, else the Origin.</summary>
    private static bool FromAnotherSite(HttpRequest request)
    {
        if (request.Headers["Sec-Fetch-Site"].ToString() is { Length: > 0 } site) { return site is not ("same-origin" or "none"); }
        var origin = request.Headers.Origin.ToString();
        return origin.Length > 0 && (!Uri.TryCreate(origin, UriKind.Absolute, out var from) || !string.Equals(from.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase));
    }

    private static IResult Logout(HttpContext http, ServingContext context, string key)
    {
        var cookie = http.Request.Cookies[ConsoleSessions.CookieName];
        if (cookie is null) { return Results.Json(new { error = "not logged in" }, statusCode: StatusCodes.Status401Unauthorized); }
        if (ManagementEndpoints.Allowed(http, context, key) is { } refused) { return refused; }
        context.Sessions.Close(cookie);
        http.Response.Cookies.Delete(ConsoleSessions.CookieName, new CookieOptions { Path = "/" });
        return Results.Json(new { loggedOut = true });
    }

    private static IResult LoginPage(HttpContext http, string? message, int status, string next = "/ui/")
    {
        var html = ConsoleAssets.Text("login.html")
            .Replace("{{message}}", message is null ? "" : $"<p class=\"error\" role=\"alert\">{WebUtility.HtmlEncode(message)}</p>", StringComparison.Ordinal)
            .Replace("{{next}}", WebUtility.HtmlEncode(http.Request.Query["next"].ToString() is { Length: > 0 } q && q.StartsWith("/ui/", StringComparison.Ordinal) ? q : next), StringComparison.Ordinal);
        return Html(http, html, status);
    }

    private static string Message(string title, string text, string link) =>
        ConsoleAssets.Text("message.html").Replace("{{title}}", WebUtility.HtmlEncode(title), StringComparison.Ordinal)
            .Replace("{{text}}", WebUtility.HtmlEncode(text), StringComparison.Ordinal).Replace("{{link}}", WebUtility.HtmlEncode(link), StringComparison.Ordinal);

    private static IResult Html(HttpContext http, string html, int status)
    {
        Secure(http);
        http.Response.Headers.CacheControl = "no-store";
        return Results.Content(html, "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);
    }

    /// <summary>Only the console's own scripts run, nothing frames it, and no address leaks to other sites.</summary>
    private static void Secure(HttpContext http)
    {
        var h = http.Response.Headers;
        // uPlot sizes its elements through style attributes, hence 'unsafe-inline' for styles only.
        h.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "same-origin";
        h.XFrameOptions = "DENY";
    }
}
