using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// What cluster mode runs so far: HTTP pipelines whose sinks are keyed and idempotent, since a batch a dead worker
/// held is done again by another, and batches of one pipeline commit on several workers at once in no shared order;
/// and <c>postgres_cdc</c> pipelines, read by one worker at a time (<see cref="StandByPipeline"/>), whose checkpoints
/// must then be in the shared metadata store for the next holder to go on from them.
/// </summary>
public static class ClusterRecipeCheck
{
    /// <summary>One line per pipeline cluster mode cannot run yet, saying why; empty when it runs them all.</summary>
    public static IReadOnlyList<string> Problems(Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        var problems = new List<string>();
        foreach (var p in recipe.Pipelines)
        {
            if (p.SourceType is not ("http" or "postgres_cdc"))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': cluster mode runs only http and postgres_cdc sources so far, not '{p.SourceType}' (files and pulls run without --cluster)");
                continue;
            }

            if (p.SourceType == "postgres_cdc" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.PostgresVariable)))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': a postgres_cdc pipeline in cluster mode needs the shared metadata store ({Core.Metadata.SharedMetadata.PostgresVariable}): the worker that takes the slot over goes on from the checkpoints its predecessor committed there");
                continue;
            }

            if (p.Sinks.Any(s => s is Core.Pipeline.SinkFactory<Connectors.Lake.LakeSinkOptions>))
            {
                // The lake skips rows below its checkpoint's offset, and each worker has a lake of its own: in a cluster
                // both would lose or scatter rows. A shared lake manifest comes with the shared metadata store.
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink does not run in cluster mode yet (each worker would keep a lake of its own); use keyed sinks such as postgres");
            }
        }

        // Jobs run once per slot across the workers (JobLeases); those that keep state in the data folder's lake need
        // a lake every worker shares, which cluster mode does not have yet.
        foreach (var job in recipe.Jobs.Where(j => !ClusterJobs.Runs(j)))
        {
            problems.Add($"{recipe.Name}: job '{job.Name}' ({job.Type}) does not run in cluster mode yet: it reads or writes the data folder's lake, which is each worker's own; run it from one process without --cluster (a models job runs in cluster mode on the postgres engine)");
        }

        return problems;
    }
}
