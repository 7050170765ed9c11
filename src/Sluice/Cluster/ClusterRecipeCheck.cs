using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// What cluster mode runs so far: HTTP pipelines whose sinks are keyed and idempotent, or the lake sink, which skips
/// events it committed already (since a batch a dead worker held is done again by another), and batches of one pipeline commit on several workers at once in no shared order;
/// and <c>postgres_cdc</c> pipelines, whose slot is read by one worker at a time (<see cref="StandByPipeline"/>), which
/// need the shared metadata store (the next holder's position, the partitions' leases), with keyed sinks or, through
/// JetStream, the lake sink (mode: changes); and files sources that land in the
/// lake themselves (claims and the ledger in the shared store make each file land once).
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
            if (p.SourceType == "files" && p.Sinks.Count == 0)
            {
                // A files source lands in the lake itself: each worker claims files of the shared drop folder in the
                // shared store, and the ledger and lake commit of a file are one transaction there (docs/SCALING.md, "Files").
                continue;
            }

            if (p.SourceType == "files")
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': a files source with sinks does not run in cluster mode yet (its units in flight are kept per process); a files source without sinks lands in the shared lake");
                continue;
            }

            if (LeasedPullPipeline.Leased(p))
            {
                // One worker pulls at a time under the pull's lease, from the cursor in the shared store (LeasedPullPipeline).
                if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.PostgresVariable)))
                {
                    problems.Add($"{recipe.Name}: pipeline '{p.Name}': a postgres_pull pipeline in cluster mode needs the shared metadata store ({Core.Metadata.SharedMetadata.PostgresVariable}): its lease and cursor are kept there for the worker that takes it over");
                }

                continue;
            }

            if (p.SourceType is not ("http" or "postgres_cdc"))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': cluster mode runs only http, postgres_cdc, files and postgres_pull (with sinks) sources so far, not '{p.SourceType}' (other pulls run without --cluster)");
                continue;
            }

            if (p.SourceType == "postgres_cdc" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.PostgresVariable)))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': a postgres_cdc pipeline in cluster mode needs the shared metadata store ({Core.Metadata.SharedMetadata.PostgresVariable}): the worker that takes the slot over goes on from the checkpoints its predecessor committed there");
                continue;
            }

            var lake = p.Sinks.OfType<Core.Pipeline.SinkFactory<Connectors.Lake.LakeSinkOptions>>().FirstOrDefault();
            if (lake is not null && p.SourceType == "postgres_cdc" && ClusterOptions.CdcByHolder(Environment.GetEnvironmentVariable))
            {
                // Through JetStream (the default) a CDC pipeline's batches carry the stream's sequences, which the lake
                // sink records in the shared manifest and skips when a batch comes again, as in http pipelines; a
                // holder's batches carry none, and the old holder's sinks may still finish a batch the new holder writes too.
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink runs in a postgres_cdc pipeline in cluster mode only through JetStream ({ClusterOptions.CdcVariable}=jetstream, the default), not with {ClusterOptions.CdcVariable}=holder (a batch written again after a take-over would land twice)");
            }
            else if (lake is not null && p.SourceType == "postgres_cdc" && lake.Options.Mode == Connectors.Lake.LakeSinkMode.Mirror)
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink's mode: mirror does not run in cluster mode yet (it tells changes apart by _lsn, not by the JetStream sequences a batch that comes again is skipped by); use mode: changes, or a postgres or clickhouse mirror");
            }
        }

        // Jobs run once per slot across the workers (JobLeases); those that write the lake are not yet fenced by their
        // lease (a run taken over could still commit), so they stay with one process even where the lake is shared.
        foreach (var job in recipe.Jobs.Where(j => !ClusterJobs.Runs(j)))
        {
            problems.Add($"{recipe.Name}: job '{job.Name}' ({job.Type}) does not run in cluster mode yet: it reads or writes the data folder's lake, which is each worker's own; run it from one process without --cluster (a models job runs in cluster mode on the postgres engine)");
        }

        return problems;
    }
}
