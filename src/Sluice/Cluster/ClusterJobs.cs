using Sluice.Core.Recipes;
using Sluice.Jobs.DailySummary;
using Sluice.Models;

namespace Sluice.Cluster;

/// <summary>
/// Which jobs run in cluster mode: those whose state and output are all in servers or folders every worker reaches.
/// <list type="bullet">
/// <item>A <c>daily_summary</c>: it reads and writes the shared lake (manifest in the shared metadata store, files in
/// <c>SLUICE_CLUSTER_FOLDER</c>), keeps its day fingerprints and watermark as checkpoints in the shared store, and
/// commits each chunk of days under its run's lease (<see cref="Jobs.JobFence"/>).</item>
/// <item>A <c>models</c> job on the postgres engine whose models read no lake table: its day ledger, model state and
/// table claims are in the warehouse; its runs, slots, leases and test results in the shared metadata store.</item>
/// </list>
/// Models on the embedded (duckdb) warehouse or over lake tables do not: their warehouse file, model state
/// (<c>LakeModelState</c>) and table claims are the data folder's own.
/// </summary>
public static class ClusterJobs
{
    public static bool Runs(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is DailySummaryJobType.Factory
            || (job.Factory is ModelsJobFactory models
                && models.Options.EffectiveEngine(models.EngineOverride) == WarehouseEngine.Postgres
                && models.Options.Project.Sources.Count == 0 && models.Options.Sources.Count == 0);
    }

    /// <summary>
    /// Whether a job cluster mode runs uses the shared lake, so needs <c>SLUICE_CLUSTER_FOLDER</c>: a daily summary does;
    /// a models job that runs there (postgres engine, no lake sources) does not, though its factory lists its models as
    /// lake tables (what they would be on the embedded warehouse).
    /// </summary>
    public static bool UsesSharedLake(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is DailySummaryJobType.Factory;
    }

    /// <summary>Why cluster mode does not run <paramref name="job"/> (one that <see cref="Runs"/> refuses), and what to do instead.</summary>
    public static string Refusal(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is ModelsJobFactory
            ? $"job '{job.Name}' (models) does not run in cluster mode yet: on the embedded (duckdb) warehouse or over lake tables, its warehouse, model state and table claims are the data folder's, each worker's own; run it from one process without --cluster, or on the postgres engine with models that read no lake table"
            : $"job '{job.Name}' ({job.Type}) does not run in cluster mode yet: its state is the data folder's, each worker's own; run it from one process without --cluster (daily_summary and models on the postgres engine run in cluster mode)";
    }
}
