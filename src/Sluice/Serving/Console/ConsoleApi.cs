using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Sluice.Connectors.Files;
using Sluice.Core;
using Sluice.Serving.Auth;
using Sluice.Serving.Management;
using Sluice.Serving.OpenApi;

namespace Sluice.Serving.Console;

/// <summary>
/// The JSON routes the console's pages need beyond <c>/api/status</c>: the recipes' shapes (the overview's graph), the
/// drop folders and file types (Files), and tokens (list without secrets, create, revoke). Admin only, like every
/// <c>/api/</c> route (<see cref="ManagementEndpoints.Allowed"/>); changes need the CSRF header with a session cookie.
/// </summary>
internal static class ConsoleApi
{
    /// <summary>Files listed per folder at most; the counts are always whole.</summary>
    public const int MaxListed = 200;

    internal static void Map(WebApplication app, ServingContext context, string key)
    {
        var log = context.Services.Logging.CreateLogger("Sluice.Console");
        var tokens = new TokenStore(context.Services.Metadata, context.Services.Time);
        var catalog = new FileTypeCatalog(context.Services.Metadata, context.Services.Time);
        app.MapGet("/api/recipes", (HttpContext http) => Guard(http, context, key, () => Results.Json(new { recipes = context.Services.Status.Recipes })))
            .WithSummary("The running recipes' shapes: each pipeline's source, steps and after-load jobs, and the recipe's jobs. Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/files", (HttpContext http) => Guard(http, context, key, () => Results.Json(Files(context, catalog))))
            .WithSummary("Each files pipeline's drop folder: incoming, processing and failed files (with the reason each failed), and the file-type catalog. Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/tokens", (HttpContext http) => Guard(http, context, key, () => Results.Json(new { tokens = tokens.List(includeRevoked: true).Select(View) })))
            .WithSummary("Every token without its secret: id, tenant, role, name, streams, created and revoked times. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/tokens", (HttpContext http, CancellationToken _) => CreateTokenAsync(http, context, key, tokens, log))
            .WithSummary("Creates a token (body { tenant, role, name, streams }); the answer holds its secret, shown this once. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/tokens/{id}/revoke", (HttpContext http, string id) => Guard(http, context, key, () =>
            {
                if (!tokens.Revoke(id)) { return Results.Json(new { error = $"id: no active token '{id}'" }, statusCode: StatusCodes.Status404NotFound); }
                ConsoleLog.TokenRevoked(log, id);
                return Results.Json(new { revoked = id });
            }))
            .WithSummary("Revokes a token by id (within a second everywhere in this process). Admin.")
            .Access(ApiAccess.Management);
    }

    private static IResult Guard(HttpContext http, ServingContext context, string key, Func<IResult> answer) =>
        ManagementEndpoints.Allowed(http, context, key) ?? answer();

    private static object View(TokenInfo t) => new
    {
        id = t.Id, tenant = t.Tenant, role = t.Role.ToString().ToLowerInvariant(), name = t.Name, streams = t.Streams,
        createdAt = t.CreatedAt.UtcDateTime, revokedAt = t.RevokedAt?.UtcDateTime,
    };

    private sealed record TokenRequest(string? Tenant, string? Role, string? Name, IReadOnlyList<string>? Streams);

    private static async Task<IResult> CreateTokenAsync(HttpContext http, ServingContext context, string key, TokenStore tokens, ILogger log)
    {
        if (ManagementEndpoints.Allowed(http, context, key) is { } refused) { return refused; }
        TokenRequest? request;
        try
        {
            request = await http.Request.ReadFromJsonAsync<TokenRequest>(JsonSerializerOptions.Web, http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return Results.Json(new { error = $"body: not a JSON object {{ tenant, role, name, streams }}: {e.Message}" }, statusCode: StatusCodes.Status400BadRequest);
        }

        if (request is null || string.IsNullOrWhiteSpace(request.Tenant) || string.IsNullOrWhiteSpace(request.Role))
        {
            return Results.Json(new { error = "body: tenant and role (writer, reader or admin) are required" }, statusCode: StatusCodes.Status400BadRequest);
        }

        try
        {
            var streams = request.Streams is { Count: > 0 } s ? s : null;
            var (info, secret) = tokens.Create(request.Tenant.Trim(), TokenStore.ParseRole(request.Role.Trim()), string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(), streams);
            ConsoleLog.TokenCreated(log, info.Id, request.Role.Trim().ToLowerInvariant(), info.Tenant);
            return Results.Json(new { token = View(info), secret }, statusCode: StatusCodes.Status201Created);
        }
        catch (SluiceException e)
        {
            return Results.Json(new { error = e.Message }, statusCode: StatusCodes.Status400BadRequest);
        }
    }

    private static object Files(ServingContext context, FileTypeCatalog catalog)
    {
        var pipelines = context.Services.Status.Pipelines.Where(p => p.DropFolder is not null).ToList();
        return new
        {
            folders = pipelines.Select(p => Folder(p.Recipe, p.Name, new DropFolder(p.DropFolder!))),
            fileTypes = pipelines.Select(p => p.Recipe).Distinct(StringComparer.Ordinal).SelectMany(r => catalog.All(r).Select(t => new
            {
                recipe = r, name = t.Name, pattern = t.Pattern, format = t.Format.ToString().ToLowerInvariant(), table = t.Table,
                eventTime = t.EventTime, nameDate = t.NameDate, onInvalid = t.OnInvalid.ToString(), origin = t.Origin,
                fields = t.Fields.Select(f => new { name = f.Name, type = f.Type.ToString().ToLowerInvariant(), required = f.Required }),
            })),
        };
    }

    private static object Folder(string recipe, string pipeline, DropFolder drop)
    {
        var failed = Listed(drop.Failed, f => !f.EndsWith(DropFolder.ErrorSuffix, StringComparison.Ordinal));
        return new
        {
            recipe, pipeline, root = drop.Root, incoming = Entries(drop.Incoming), processing = Entries(drop.Processing),
            processed = Listed(drop.Processed).Count,
            failedCount = failed.Count,
            failed = failed.Files.OrderByDescending(f => f.LastWriteTimeUtc).Select(f =>
            {
                var why = DropFolder.ReadRejection(f.FullName + DropFolder.ErrorSuffix);
                return new
                {
                    name = f.Name, size = f.Length, failedAt = why?.FailedAt.UtcDateTime ?? f.LastWriteTimeUtc, reason = why?.Reason ?? "no .error.json beside it",
                    fileType = why?.FileType, line = why?.Line, record = why?.Record, field = why?.Field, errorCount = why?.ErrorCount,
                };
            }),
        };
    }

    private static object Entries(string folder)
    {
        var (count, files) = Listed(folder);
        return new { count, files = files.OrderBy(f => f.LastWriteTimeUtc).Select(f => new { name = f.Name, size = f.Length, modifiedAt = f.LastWriteTimeUtc }) };
    }

    /// <summary>How many files the folder holds and the first <see cref="MaxListed"/> of them (none when it does not exist yet: a source that has not started).</summary>
    private static (int Count, List<FileInfo> Files) Listed(string folder, Func<string, bool>? include = null)
    {
        if (!Directory.Exists(folder)) { return (0, []); }
        var count = 0;
        var files = new List<FileInfo>();
        foreach (var path in Directory.EnumerateFiles(folder).Where(p => include?.Invoke(p) ?? true))
        {
            if (count++ < MaxListed) { files.Add(new FileInfo(path)); }
        }

        return (count, files);
    }
}
