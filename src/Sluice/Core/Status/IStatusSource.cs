namespace Sluice.Core.Status;

/// <summary>
/// A running source (or a stream source inside a pipeline) that reports its own figures to the status board: counts as
/// it commits, and probes for what only it can see (files waiting, a replication slot). The recipe host attaches each
/// pipeline's figures once, before the run starts.
/// </summary>
public interface IStatusSource
{
    void AttachStatus(PipelineStatus status);
}

/// <summary>A sink that reports what only it can see (a circuit breaker's state); the pipeline attaches it once.</summary>
public interface IStatusSink
{
    void AttachStatus(SinkStatus status);
}
