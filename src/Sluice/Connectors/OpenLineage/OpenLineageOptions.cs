using Sluice.Core;

namespace Sluice.Connectors.OpenLineage;

/// <summary>
/// Where run events go: <c>OPENLINEAGE_URL</c> (the server's base URL; events are posted to <c>/api/v1/lineage</c>)
/// and <c>OPENLINEAGE_NAMESPACE</c> (the namespace of Sluice's jobs and datasets, default <c>sluice</c>).
/// </summary>
public sealed record OpenLineageOptions(Uri Endpoint, string Namespace)
{
    public const string UrlVariable = "OPENLINEAGE_URL";
    public const string NamespaceVariable = "OPENLINEAGE_NAMESPACE";
    public const string DefaultNamespace = "sluice";

    /// <summary>How many events wait for the server at most; more are dropped with a warning (a run never waits for lineage).</summary>
    public int QueueCapacity { get; init; } = 1000;

    /// <summary>Retries of one event before it is dropped.</summary>
    public int Retries { get; init; } = 3;

    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Bound on one attempt: a hung server costs a few seconds per event, not the queue.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a stopping process waits for queued events to be sent.</summary>
    public TimeSpan DrainWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The options from the environment; null when <c>OPENLINEAGE_URL</c> is not set (lineage is off).</summary>
    public static OpenLineageOptions? FromEnvironment() =>
        Parse(Environment.GetEnvironmentVariable(UrlVariable), Environment.GetEnvironmentVariable(NamespaceVariable));

    public static OpenLineageOptions? Parse(string? url, string? ns)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return null;
        }

        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttp && baseUri.Scheme != Uri.UriSchemeHttps))
        {
            throw new SluiceException($"OpenLineage: {UrlVariable}='{url}' is not an http(s) URL (for example http://localhost:5000)");
        }

        var endpoint = new Uri(baseUri.AbsoluteUri.TrimEnd('/') + "/api/v1/lineage");
        return new OpenLineageOptions(endpoint, string.IsNullOrWhiteSpace(ns) ? DefaultNamespace : ns.Trim());
    }
}
