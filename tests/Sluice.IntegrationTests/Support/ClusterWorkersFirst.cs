using Sluice.IntegrationTests.Cluster;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestCollectionOrderer("Sluice.IntegrationTests.Support.ClusterWorkersFirst", "Sluice.IntegrationTests")]

namespace Sluice.IntegrationTests.Support;

/// <summary>
/// Starts the <see cref="ClusterWorkersSerial"/> collection first, the others after it in xunit's own (random) order.
/// That collection runs its classes one after the other and is the longest of the suite by far (about 12 of its 23
/// minutes in CI): started first, it runs on one of the two test threads while every other collection shares the
/// second, and the suite ends about when the sum of all tests over two threads says. Started last, as xunit's random
/// order can do, it ran alone for its 12 minutes after everything else had finished, one core idle.
/// </summary>
public sealed class ClusterWorkersFirst : ITestCollectionOrderer
{
    private readonly DefaultTestCollectionOrderer _random = new();

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        _random.OrderTestCollections(testCollections).OrderBy(c => c.DisplayName == ClusterWorkersSerial.Name ? 0 : 1);
}
