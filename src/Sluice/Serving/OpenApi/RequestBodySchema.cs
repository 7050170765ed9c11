using Microsoft.AspNetCore.Builder;
using Microsoft.OpenApi;

namespace Sluice.Serving.OpenApi;

/// <summary>
/// A request body whose shape comes from configuration (a recipe's event schema), not from a .NET type: the handler
/// reads the raw body itself, and the OpenAPI document shows this schema for each content type.
/// </summary>
/// <param name="Schema">Per content type, the body's schema; built when the document is asked for.</param>
public sealed record RequestBodySchema(Func<IReadOnlyDictionary<string, OpenApiSchema>> Schema, string Description);

public static class RequestBodySchemaExtensions
{
    public static TBuilder Body<TBuilder>(this TBuilder builder, RequestBodySchema body)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(body);
}
