using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Sluice.Serving.OpenApi;

/// <summary>
/// <c>GET /docs</c>: the API reference, RapiDoc (vendored in <c>rapidoc/</c>, embedded in the assembly) rendering
/// <c>/openapi/v1.json</c>. Served from the process itself and barred by its content security policy from loading
/// anything from elsewhere (the bundle names web fonts it would otherwise fetch), so it works offline.
/// </summary>
internal static class ApiReferencePage
{
    private const string Policy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

    private static readonly Lazy<byte[]> Page = new(() => Resource("docs.html"));
    private static readonly Lazy<byte[]> Script = new(() => Resource("rapidoc-min.js"));

    public static void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/docs", (HttpContext http) => Serve(http, Page.Value, "text/html; charset=utf-8"))
            .WithSummary("The API reference: this document, rendered in the browser (no internet needed).")
            .Access(ApiAccess.Anyone);
        routes.MapGet("/docs/rapidoc-min.js", (HttpContext http) => Serve(http, Script.Value, "text/javascript; charset=utf-8"))
            .WithSummary("The reference page's renderer (RapiDoc 9.3.8, MIT).")
            .Access(ApiAccess.Anyone);
    }

    private static IResult Serve(HttpContext http, byte[] content, string type)
    {
        http.Response.Headers.ContentSecurityPolicy = Policy;
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(content, type);
    }

    private static byte[] Resource(string name)
    {
        using var stream = typeof(ApiReferencePage).Assembly.GetManifestResourceStream($"Sluice.Serving.OpenApi.{name}")
            ?? throw new InvalidOperationException($"embedded resource '{name}' is missing from the engine assembly");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
