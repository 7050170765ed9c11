using System.Data.Common;
using Sluice.Connectors.Pull;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// The fence of a pull this worker holds the lease of (<see cref="LeasedPullPipeline"/>): a page is written only while
/// the lease's row in the shared store still names this worker with the token it took it with.
/// </summary>
internal sealed class PullLeaseFence(MetadataStore store, PartitionLeases leases, PartitionLease lease) : IPullFence
{
    public void Check(DbConnection connection, DbTransaction tx)
    {
        if (!leases.Holds(connection, tx, lease))
        {
            throw new PullFencedException($"{leases.Stream}: the pull's lease (token {lease.Token}) is another worker's now; this worker wrote nothing of its page and stops pulling");
        }
    }

    public void Check()
    {
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        Check(c, tx);
        tx.Commit();
    }
}

/// <summary>The worker's engine services as the pipeline of a held pull sees them: the same, and the pull's fence (<see cref="IPullFence.Of"/>).</summary>
internal sealed class PullFencedServices(IEngineServices inner, IPullFence fence) : IEngineServices
{
    public Core.DataDirectory Data => inner.Data;

    public MetadataStore Metadata => inner.Metadata;

    public Core.DeadLetters.DeadLetterStore DeadLetters => inner.DeadLetters;

    public TimeProvider Time => inner.Time;

    public Microsoft.Extensions.Logging.ILoggerFactory Logging => inner.Logging;

    public Core.HealthState Health => inner.Health;

    public Core.Status.StatusBoard Status => inner.Status;

    public object? GetService(Type serviceType) => serviceType == typeof(IPullFence) ? fence : inner.GetService(serviceType);
}
