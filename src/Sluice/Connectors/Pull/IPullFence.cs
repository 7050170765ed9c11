using System.Data.Common;
using Sluice.Core;

namespace Sluice.Connectors.Pull;

/// <summary>
/// The check a pull makes before a page's writes commit, on a worker of a cluster: the pull's lease is still this
/// worker's, under the fencing token it took it with. A worker paused past its lease (SIGSTOP, a long GC pause, a VM
/// migration) resumes believing it pulls while another worker pulls on from the shared cursor; the check makes its next
/// page write nothing. The cluster hands it to the pull's sources as a service of their <see cref="Core.Recipes.IEngineServices"/>
/// (<see cref="Of"/>); a pull outside a cluster has none.
/// </summary>
public interface IPullFence
{
    /// <summary>
    /// Within <paramref name="tx"/> on the metadata store (where the lease is kept): throws
    /// <see cref="PullFencedException"/> when the lease is no longer this worker's. The lease's row stays locked until
    /// the transaction ends, so no worker takes the pull over between the check and the commit.
    /// </summary>
    void Check(DbConnection connection, DbTransaction tx);

    /// <summary>The same check on its own, immediately before writes to another store (a reminder store in its own database).</summary>
    void Check();

    /// <summary>The fence the services carry, or null outside a cluster.</summary>
    static IPullFence? Of(Core.Recipes.IEngineServices services) => services?.GetService(typeof(IPullFence)) as IPullFence;
}

/// <summary>A page was not written: the pull's lease is another worker's now (taken over while this one was paused or cut off).</summary>
public sealed class PullFencedException(string message) : SluiceException(message);
