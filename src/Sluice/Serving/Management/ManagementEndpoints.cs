using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sluice.Core.Status;
using Sluice.Serving.Auth;
using Sluice.Serving.OpenApi;
using Sluice.Serving.Console;

namespace Sluice.Serving.Management;

/// <summary>
/// The routes every Sluice server has for operating the process, whatever its recipes: <c>/readyz</c> (each pipeline's
/// state and last error; no token, like <c>/healthz</c>), and under <c>/api/</c> the status board as JSON and a tap on
/// a pipeline's records. <c>/api/</c> routes show data, so they ask for the run's management key (in the management
/// file, readable by the data folder's owner only: what <c>sluice status</c> and <c>sluice tap</c> send) or an admin token.
/// </summary>
public static class ManagementEndpoints
{
    /// <summary>Records a tap gives at most: a sample to look at, not an export.</summary>
    public const int MaxTapLimit = 10_000;

    public const int DefaultTapLimit = 100;

    internal static void Map(WebApplication app, ServingContext context, string key, Func<IReadOnlyList<(string Component, string Reason)>> problems)
    {
        var board = context.Services.Status;
        app.MapGet("/readyz", () => Ready(board, problems()))
            .WithSummary("Readiness: 200 when every pipeline runs, nothing fails and no critical alert fires, else 503; each pipeline's state, condition and last error, and the firing alerts. No token needed.")
            .Access(ApiAccess.Anyone);
        app.MapGet("/api/status", (HttpContext http) =>
                Allowed(http, context, key) is { } refused ? refused : Results.Json(board.Snapshot(history: http.Request.Query["history"] == "true")))
            .WithSummary("Every pipeline's and job's figures (records, batches, sinks, lag, backlog, slots, dead letters by reason); history=true adds each pipeline's samples of the last hour. Management key or admin token.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/tap", (HttpContext http) => TapAsync(http, context, key, board))
            .WithSummary("A live sample of a pipeline's records as JSON lines (pipeline=<recipe>/<pipeline>, sink=<sink> for what a sink committed, limit=<n>). Management key or admin token.")
            .Access(ApiAccess.Management);
        DeadLetterEndpoints.Map(app, context, key);
        JobEndpoints.Map(app, context, key);
    }

    private static IResult Ready(StatusBoard board, IReadOnlyList<(string Component, string Reason)> problems)
    {
        var pipelines = board.Pipelines.Select(p => p.View(board.Time.GetUtcNow(), history: false))
            .Select(p => new { recipe = p.Recipe, pipeline = p.Pipeline, state = p.State, condition = p.Condition, lastError = p.LastError, lastErrorAt = p.LastErrorAt })
            .ToList();
        // A firing alert is listed; only a critical one makes the process not ready (a warning is for people, not for a load balancer).
        var alerts = board.Alerts.Where(a => a.State == "firing")
            .Select(a => new { recipe = a.Recipe, alert = a.Alert, severity = a.Severity, since = a.Since, message = a.Message })
            .ToList();
        var ready = problems.Count == 0 && pipelines.All(p => p.state == "running") && alerts.All(a => a.severity != "critical");
        return Results.Json(
            new { status = ready ? "ready" : "not ready", pipelines, problems = problems.Select(p => new { component = p.Component, reason = p.Reason }), alerts },
            statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task TapAsync(HttpContext http, ServingContext context, string key, StatusBoard board)
    {
        if (Allowed(http, context, key) is { } refused)
        {
            await refused.ExecuteAsync(http).ConfigureAwait(false);
            return;
        }

        var name = http.Request.Query["pipeline"].ToString();
        var sink = http.Request.Query["sink"].ToString() is { Length: > 0 } s ? s : null;
        var limitText = http.Request.Query["limit"].ToString();
        var limit = DefaultTapLimit;
        if (limitText.Length > 0 && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > MaxTapLimit))
        {
            await Problem(http, 400, $"limit: '{limitText}' is not a number from 1 to {MaxTapLimit}").ConfigureAwait(false);
            return;
        }

        if (board.Find(name) is not { } pipeline)
        {
            await Problem(http, 404, $"pipeline: no running pipeline '{name}' (running: {string.Join(", ", board.Pipelines.Select(p => p.QualifiedName))})").ConfigureAwait(false);
            return;
        }

        if (sink is not null && pipeline.Sinks.All(x => x.Name != sink))
        {
            await Problem(http, 404, $"sink: pipeline '{name}' has no sink '{sink}' (sinks: {string.Join(", ", pipeline.Sinks.Select(x => x.Name))})").ConfigureAwait(false);
            return;
        }

        using var listener = pipeline.Tap.Listen(sink);
        if (listener is null)
        {
            await Problem(http, 429, $"{TapHub.MaxListeners} taps already listen to '{name}'; try again when one ends").ConfigureAwait(false);
            return;
        }

        // Ends with the limit, the client, or the server's stop (a tap must not hold a shutdown for its drain bound).
        var stopping = http.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var ct = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
        http.Response.ContentType = "application/x-ndjson; charset=utf-8";
        await http.Response.StartAsync(ct.Token).ConfigureAwait(false);
        var sent = 0;
        try
        {
            while (sent < limit && await listener.Lines.WaitToReadAsync(ct.Token).ConfigureAwait(false))
            {
                while (sent < limit && listener.Lines.TryRead(out var line))
                {
                    await http.Response.WriteAsync(line + "\n", ct.Token).ConfigureAwait(false);
                    sent++;
                }

                await http.Response.Body.FlushAsync(ct.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The reader left or the server stops: the tap just ends.
        }
    }

    /// <summary>
    /// Null when the request carries the management key, an admin token, or the console's session cookie of an admin
    /// (with the session's CSRF header on a POST, PUT, PATCH or DELETE); otherwise the 401/403 to answer. A bearer
    /// header wins over a cookie: scripts never need the CSRF header.
    /// </summary>
    internal static IResult? Allowed(HttpContext http, ServingContext context, string key)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[7..].Trim()), Encoding.UTF8.GetBytes(key)))
        {
            return null;
        }

        if (header.Length == 0 && http.Request.Cookies[ConsoleSessions.CookieName] is { } cookie)
        {
            return SessionAllowed(http, context, cookie);
        }

        var caller = context.Auth.Authenticate(http.Request, out var problem);
        if (caller is null) { return Results.Json(new { error = $"{problem} (the management key is in <data>/management/<recipe>.json; sluice status and sluice tap send it)" }, statusCode: 401); }
        return caller.Role == TokenRole.Admin ? null : Results.Json(new { error = TenantScoped(caller) }, statusCode: 403);
    }

    /// <summary>
    /// Why a reader's or writer's token is refused by the console and every management route. The rule: reader and
    /// writer tokens are scoped to their tenant (its data only, on the recipes' own routes); an admin token is
    /// process-wide (its tenant only names who holds it), and only such a token sees the whole process.
    /// </summary>
    internal static string TenantScoped(Caller caller) =>
        $"this is a {caller.Role.ToString().ToLowerInvariant()} token of tenant '{caller.Tenant}': it reaches only that tenant's data; "
        + "the console and the management routes need a process-wide admin token: sluice tokens create --role admin";

    private static IResult? SessionAllowed(HttpContext http, ServingContext context, string cookie)
    {
        if (context.Sessions.Find(cookie) is not { } session)
        {
            return Results.Json(new { error = "the console session has ended (logged out, idle or expired): log in again at /ui/login" }, statusCode: 401);
        }

        if (context.Auth.ResolveId(session.TokenId) is not { Role: TokenRole.Admin })
        {
            context.Sessions.Close(cookie);
            return Results.Json(new { error = "the token this console session was opened with is revoked: log in again at /ui/login" }, statusCode: 401);
        }

        var changes = !(HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method) || HttpMethods.IsOptions(http.Request.Method));
        if (changes && !session.CsrfMatches(http.Request.Headers[ConsoleSessions.CsrfHeader].ToString()))
        {
            return Results.Json(new { error = $"{ConsoleSessions.CsrfHeader}: missing or not this session's; a console page sends it with every change (reload the page)" }, statusCode: 403);
        }

        return null;
    }

    private static Task Problem(HttpContext http, int status, string error) => Results.Json(new { error }, statusCode: status).ExecuteAsync(http);
}
