namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The multi-worker tests, run one after the other (xunit runs different collections in parallel): each starts three
/// workers, most a three-node NATS cluster too, and two of them at once on two cores stretch lease and take-over
/// timings past their bounds.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ClusterWorkersSerial
{
    public const string Name = "cluster workers";
}
