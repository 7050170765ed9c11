using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Sluice.Core.Pipeline;

namespace Sluice.Connectors.OpenTelemetry;

/// <summary>
/// Exports the engine's trace spans (<see cref="PipelineTracing"/>) over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
/// is set; off otherwise, and then no span is even created. The exporter reads the standard <c>OTEL_*</c> variables
/// itself (protocol, headers, timeout); the service is <c>sluice</c> unless <c>OTEL_SERVICE_NAME</c> names another.
/// </summary>
public static class OtlpTracing
{
    public const string EndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The tracer provider to dispose at exit (it flushes what is batched), or null when tracing is off.</summary>
    public static TracerProvider? StartFromEnvironment()
    {
        var endpoint = Environment.GetEnvironmentVariable(EndpointVariable);
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return null;
        }

        if (!Uri.TryCreate(endpoint.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new Core.SluiceException($"OpenTelemetry: {EndpointVariable}='{endpoint}' is not an http(s) URL (for example http://localhost:4317)");
        }

        return Build(b => b.AddOtlpExporter());
    }

    /// <summary>A provider listening to the engine's spans, exporting them as <paramref name="export"/> says (tests: in memory).</summary>
    public static TracerProvider Build(Action<TracerProviderBuilder> export)
    {
        ArgumentNullException.ThrowIfNull(export);
        var builder = Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(r => r.AddService(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 } name ? name : "sluice"))
            .AddSource(PipelineTracing.SourceName);
        export(builder);
        return builder.Build();
    }
}
