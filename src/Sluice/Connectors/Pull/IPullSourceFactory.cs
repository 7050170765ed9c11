namespace Sluice.Connectors.Pull;

/// <summary>A pull source's factory (<c>postgres_pull</c>, <c>salesforce</c>): what cluster mode asks of it to run the pull under a lease.</summary>
public interface IPullSourceFactory
{
    /// <summary>The <c>mapping:</c> that lands the records itself; null when the pipeline's sinks take them.</summary>
    PullMapping? Mapping { get; }
}
