namespace Sluice.Core.Status;

/// <summary>
/// One worker of a cluster as the shared worker registry last saw it: who and where it is, when it last beat
/// (<see cref="HeartbeatAgeSeconds"/>), its health (<c>green</c>, <c>red</c> with a reason, <c>lost</c> once its heartbeat
/// is older than the registry's limit, <c>stopped</c> after a clean stop), what it holds by kind (partitions, a CDC
/// slot, job leases) and the consumer lag it last read for each of its pipelines.
/// </summary>
public sealed record WorkerView(
    string Id, string Host, int Pid, int Port, string Recipe, string Version, DateTime Started, DateTime HeartbeatAt,
    double HeartbeatAgeSeconds, string Health, string? Reason, IReadOnlyDictionary<string, IReadOnlyList<string>> Holds,
    IReadOnlyList<PipelineLag> Lags);

/// <summary>A pipeline's consumer lag as a worker read it: events in the cluster's log not yet acknowledged by any worker.</summary>
public sealed record PipelineLag(string Pipeline, long Events);
