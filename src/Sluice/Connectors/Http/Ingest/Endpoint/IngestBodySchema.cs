using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Sluice.Core.Schema;
using Sluice.Serving.OpenApi;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The OpenAPI schema of a stream's request body, from its event schemas: one object per <c>schema_version</c>
/// (dotted paths as nested objects, required fields, types and formats, enumerations, child arrays), a JSON body being
/// one event or an array of them, an NDJSON body one event per line.
/// </summary>
internal static class IngestBodySchema
{
    public static RequestBodySchema For(HttpIngestOptions options) => new(
        () =>
        {
            var evt = Event(options);
            return new Dictionary<string, OpenApiSchema>
            {
                ["application/json"] = new() { OneOf = [evt, new OpenApiSchema { Type = JsonSchemaType.Array, Items = evt }] },
                ["application/x-ndjson"] = new() { Type = JsonSchemaType.String, Description = "One event per line, each as the application/json object schema." },
            };
        },
        $"Events of stream '{options.Stream}': one object, an array of objects, or NDJSON. Unknown properties are ignored.");

    /// <summary>One event: any of the stream's versions.</summary>
    public static OpenApiSchema Event(HttpIngestOptions options)
    {
        var versions = options.Versions.OrderBy(v => v.Version).Select(v => Version(options, v)).ToList();
        return versions.Count == 1 ? (OpenApiSchema)versions[0] : new OpenApiSchema { OneOf = [.. versions] };
    }

    private static OpenApiSchema Version(HttpIngestOptions options, EventSchemaVersion version)
    {
        var root = Object($"schema_version {version.Version} ({version.File})");
        var single = options.Versions.Count == 1;
        root.Properties![options.VersionField] = new OpenApiSchema
        {
            Type = JsonSchemaType.Integer,
            Enum = [JsonValue.Create(version.Version)],
            Description = single ? "Optional: the stream has one version." : "Which schema the event follows.",
        };
        if (!single) { root.Required!.Add(options.VersionField); }
        root.Properties[options.TenantField] = new OpenApiSchema
        {
            Type = JsonSchemaType.String,
            Description = "Optional: the tenant always comes from the token; an event naming another tenant refuses the whole request (403).",
        };
        foreach (var field in version.Fields) { Add(root, field.Path.Split('.'), Field(field), field.Required); }
        foreach (var child in version.Children)
        {
            var element = Object($"An element, landing in table {child.Table}.");
            foreach (var field in child.Fields) { Add(element, field.Path.Split('.'), Field(field), field.Required); }
            Add(root, child.Path.Split('.'), new OpenApiSchema { Type = JsonSchemaType.Array, Items = element }, child.Required);
        }

        return root;
    }

    private static OpenApiSchema Object(string? description = null) =>
        new() { Type = JsonSchemaType.Object, Description = description, Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal), Required = new HashSet<string>(StringComparer.Ordinal) };

    /// <summary>Puts the leaf at its dotted path, creating the objects on the way; a required leaf makes its parents required.</summary>
    private static void Add(OpenApiSchema parent, string[] path, OpenApiSchema leaf, bool required)
    {
        for (var i = 0; i < path.Length - 1; i++)
        {
            if (!parent.Properties!.TryGetValue(path[i], out var next) || next is not OpenApiSchema nested)
            {
                nested = Object();
                parent.Properties[path[i]] = nested;
            }

            if (required) { parent.Required!.Add(path[i]); }
            parent = nested;
        }

        parent.Properties![path[^1]] = leaf;
        if (required) { parent.Required!.Add(path[^1]); }
    }

    private static OpenApiSchema Field(EventField field)
    {
        var schema = field.Type switch
        {
            FieldType.Integer => new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int64" },
            FieldType.Double or FieldType.Decimal => new OpenApiSchema { Type = JsonSchemaType.Number, Format = "double" },
            FieldType.Boolean => new OpenApiSchema { Type = JsonSchemaType.Boolean },
            FieldType.Timestamp => new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time" },
            FieldType.Date => new OpenApiSchema { Type = JsonSchemaType.String, Format = "date" },
            _ => new OpenApiSchema { Type = JsonSchemaType.String },
        };
        if (field.Values is { } values) { schema.Enum = [.. values.Select(v => (JsonNode)JsonValue.Create(v))]; }
        var notes = new List<string>();
        if (field.RequiredWhen is { } when) { notes.Add($"Required when {when}."); }
        if (field.Pii) { notes.Add("Personal data: stored as a keyed hash in the analytics tables."); }
        schema.Description = notes.Count == 0 ? null : string.Join(' ', notes);
        return schema;
    }
}
