using Sluice.Core.Recipes;
using Sluice.Models;

namespace Sluice.Cluster;

/// <summary>
/// Which jobs run in cluster mode: those whose state and output are all in servers every worker reaches. So far that is
/// a <c>models</c> job on the postgres engine whose models read no lake table (its day ledger, model state and table
/// claims are in the warehouse; its runs, slots, leases and test results in the shared metadata store). Jobs that read
/// or write the data folder's lake (<c>daily_summary</c>, models on duckdb or over lake sources) need a lake every
/// worker shares.
/// </summary>
public static class ClusterJobs
{
    public static bool Runs(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is ModelsJobFactory models
            && models.Options.EffectiveEngine(models.EngineOverride) == WarehouseEngine.Postgres
            && models.Options.Project.Sources.Count == 0 && models.Options.Sources.Count == 0;
    }
}
