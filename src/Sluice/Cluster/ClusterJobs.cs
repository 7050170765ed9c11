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
/// <item>A <c>models</c> job on the postgres engine: its day ledger, model state and table claims are in the warehouse;
/// its runs, slots, leases and test results in the shared metadata store; lake tables its models read are copied from
/// the shared lake.</item>
/// <item>A <c>models</c> job on the embedded (duckdb) warehouse: its tables are in the shared lake, its model state, day
/// ledger and table claims (<c>LakeModelState</c>) in the shared metadata store, committed with the lake's manifest
/// under the run's lease.</item>
/// <item>A job whose factory says it runs (<see cref="IClusterJobFactory"/>): repeat-reminder's <c>send_reminders</c>,
/// whose outbox is in the shared metadata store and whose every step that judges claims or precedes a send holds the
/// run's lease; and <c>postgres_backfill</c> into a <c>postgres_cdc</c> pipeline, whose pages go through the cluster's
/// log (the pipeline's change stream in JetStream) with ids that make a page published again by a take-over one, and
/// whose progress is in the shared store, written under the run's lease (<c>Connectors.Nats.BackfillLog</c>).</item>
/// </list>
/// </summary>
public static class ClusterJobs
{
    public static bool Runs(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is DailySummaryJobType.Factory or ModelsJobFactory or IClusterJobFactory;
    }

    /// <summary>Why cluster mode cannot run a job it <see cref="Runs"/> as configured (a variable every worker needs), or null.</summary>
    public static string? Problem(JobDefinition job, Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Factory is IClusterJobFactory own && own.ClusterProblem(variable) is { } problem)
        {
            return $"job '{job.Name}' ({job.Type}) does not run in cluster mode as configured: {problem}";
        }

        return UsesSharedLake(job) && string.IsNullOrEmpty(variable(Core.Metadata.SharedMetadata.FolderVariable))
            ? $"job '{job.Name}' ({job.Type}) in cluster mode reads and writes the shared lake, whose files must be in a folder every worker sees: set {Core.Metadata.SharedMetadata.FolderVariable} (docs/SCALING.md, \"Jobs\")"
            : null;
    }

    /// <summary>
    /// Whether a job cluster mode runs uses the shared lake, so needs <c>SLUICE_CLUSTER_FOLDER</c>: a daily summary does,
    /// and a models job on the embedded warehouse or whose models read lake tables; one on the postgres engine that
    /// reads none does not, though its factory lists its models as lake tables (what they would be on the embedded warehouse).
    /// </summary>
    public static bool UsesSharedLake(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is DailySummaryJobType.Factory
            || (job.Factory is ModelsJobFactory models
                && (models.Options.EffectiveEngine(models.EngineOverride) != WarehouseEngine.Postgres
                    || models.Options.Project.Sources.Count > 0 || models.Options.Sources.Count > 0));
    }

    /// <summary>Why cluster mode does not run <paramref name="job"/> (one that <see cref="Runs"/> refuses), and what to do instead.</summary>
    public static string Refusal(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return $"job '{job.Name}' ({job.Type}) does not run in cluster mode yet: its state is the data folder's, each worker's own; run it from one process without --cluster (daily_summary, models, send_reminders and postgres_backfill run in cluster mode)";
    }

    /// <summary>
    /// Why cluster mode cannot run a job that feeds rows to a pipeline of <paramref name="recipe"/> (a backfill) into that
    /// pipeline, or null: its pages go through the pipeline's change stream, so the pipeline must be a postgres_cdc one.
    /// </summary>
    public static string? FeedProblem(Recipe recipe, JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(job);
        return job.Factory is Core.Pipeline.IRowFeedingJob feed && recipe.Pipelines.FirstOrDefault(p => p.Name == feed.Pipeline) is { } pipeline
            && Connectors.Postgres.PostgresBackfillJob.PipelineProblem(pipeline) is { } problem
            ? $"job '{job.Name}' ({job.Type}) does not run in cluster mode as configured: {problem}"
            : null;
    }
}
