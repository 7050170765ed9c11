using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace Sluice.Serving.OpenApi;

/// <summary>
/// Completes the OpenAPI document from the routes the server really maps: every route endpoint appears (also those
/// the API explorer leaves out, such as the document's own route and static pages), each with who may call it
/// (<see cref="ApiAccess"/>, the bearer scheme) and, for a body shaped by configuration, its schema
/// (<see cref="RequestBodySchema"/>). Driven by the endpoints, so a route added anywhere cannot be missing.
/// </summary>
internal sealed partial class RouteDocument : IOpenApiDocumentTransformer
{
    public const string Scheme = "bearer";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info.Title = "Sluice";
        document.Info.Description = "The HTTP API of a running Sluice process: ingest, queries, health, metrics and management. Tokens: `sluice tokens create --role writer|reader|admin`.";
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal);
        document.Components.SecuritySchemes[Scheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "sk_<id>_<secret>",
            Description = "A token from `sluice tokens create` (roles writer, reader, admin; the tenant comes from the token), or for the management routes the run's management key (in <data>/management/<recipe>.json).",
        };
        document.Paths ??= [];
        var endpoints = context.ApplicationServices.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>();
        foreach (var endpoint in endpoints)
        {
            var path = Path(endpoint.RoutePattern.RawText ?? "/");
            if (!document.Paths.TryGetValue(path, out var item) || item is not OpenApiPathItem pathItem)
            {
                pathItem = new OpenApiPathItem();
                document.Paths[path] = pathItem;
            }

            foreach (var method in endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                var verb = new HttpMethod(method);
                pathItem.Operations ??= [];
                if (!pathItem.Operations.TryGetValue(verb, out var operation))
                {
                    operation = new OpenApiOperation
                    {
                        Summary = endpoint.Metadata.GetMetadata<IEndpointSummaryMetadata>()?.Summary,
                        Description = endpoint.Metadata.GetMetadata<IEndpointDescriptionMetadata>()?.Description,
                        Responses = new OpenApiResponses { ["200"] = new OpenApiResponse { Description = "OK" } },
                    };
                    pathItem.Operations[verb] = operation;
                }

                Describe(document, operation, endpoint);
            }
        }

        return Task.CompletedTask;
    }

    private static void Describe(OpenApiDocument document, OpenApiOperation operation, Endpoint endpoint)
    {
        if (endpoint.Metadata.GetMetadata<ApiAccess>() is { } access)
        {
            operation.Description = string.IsNullOrEmpty(operation.Description) ? access.Describe() : $"{operation.Description}\n\n{access.Describe()}";
            operation.Security = access.NeedsToken
                ? [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Scheme, document)] = [.. access.Roles.Select(r => r.ToString().ToLowerInvariant())] }]
                : [];
            if (access.NeedsToken)
            {
                operation.Responses ??= [];
                operation.Responses.TryAdd("401", new OpenApiResponse { Description = "No token, or an unknown or revoked one." });
                operation.Responses.TryAdd("403", new OpenApiResponse { Description = "The token's role or scope does not allow this." });
            }
        }

        if (endpoint.Metadata.GetMetadata<RequestBodySchema>() is { } body)
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Description = body.Description,
                Content = body.Schema().ToDictionary(c => c.Key, c => new OpenApiMediaType { Schema = c.Value }),
            };
        }
    }

    /// <summary>The route as an OpenAPI path: a leading slash, parameters without constraints, defaults or catch-all stars.</summary>
    public static string Path(string route) =>
        "/" + Parameter().Replace(route.TrimStart('/'), m => "{" + m.Groups[1].Value + "}");

    [GeneratedRegex(@"\{\*{0,2}([A-Za-z0-9_]+)[^}]*\}")]
    private static partial Regex Parameter();
}
