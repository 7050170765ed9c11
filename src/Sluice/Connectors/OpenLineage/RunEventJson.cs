using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace Sluice.Connectors.OpenLineage;

/// <summary>Writes an OpenLineage 2-0-2 <c>RunEvent</c>: event type and time, run id, job, input and output datasets.</summary>
public static class RunEventJson
{
    public const string SchemaUrl = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
    private const string ErrorFacetSchema = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";

    /// <summary>A URN rather than a web address: Sluice has no canonical public URL to claim.</summary>
    public static readonly string Producer =
        "urn:sluice:" + (typeof(RunEventJson).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "dev");

    public static string EventType(LineageEnd? end) => end switch
    {
        null => "START",
        LineageEnd.Complete => "COMPLETE",
        LineageEnd.Fail => "FAIL",
        _ => "ABORT",
    };

    public static byte[] Write(string jobNamespace, LineageRun run, LineageEnd? end, string? error, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(run);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("eventType", EventType(end));
            w.WriteString("eventTime", at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            w.WriteStartObject("run");
            w.WriteString("runId", run.Id.ToString("D"));
            if (error is not null)
            {
                w.WriteStartObject("facets");
                w.WriteStartObject("errorMessage");
                w.WriteString("_producer", Producer);
                w.WriteString("_schemaURL", ErrorFacetSchema);
                w.WriteString("message", error);
                w.WriteString("programmingLanguage", "C#");
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteStartObject("job");
            w.WriteString("namespace", jobNamespace);
            w.WriteString("name", run.Job);
            w.WriteEndObject();
            WriteDatasets(w, "inputs", run.Inputs);
            WriteDatasets(w, "outputs", run.Outputs);
            w.WriteString("producer", Producer);
            w.WriteString("schemaURL", SchemaUrl);
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteDatasets(Utf8JsonWriter w, string name, IReadOnlyList<LineageDataset> datasets)
    {
        w.WriteStartArray(name);
        foreach (var d in datasets)
        {
            w.WriteStartObject();
            w.WriteString("namespace", d.Namespace);
            w.WriteString("name", d.Name);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
