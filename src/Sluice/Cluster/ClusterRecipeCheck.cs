using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// What cluster mode runs so far: HTTP pipelines whose sinks are keyed and idempotent, or the lake sink, which skips
/// events it committed already (since a batch a dead worker held is done again by another), and batches of one pipeline commit on several workers at once in no shared order;
/// and <c>postgres_cdc</c> pipelines, read by one worker at a time (<see cref="StandByPipeline"/>), whose checkpoints
/// must then be in the shared metadata store for the next holder to go on from them; and files sources that land in the
/// lake themselves (claims and the ledger in the shared store make each file land once); and pulls (<c>postgres_pull</c>,
/// <c>salesforce</c>) with keyed sinks, or with a <c>mapping:</c> whose store every worker shares, under one lease
/// (<see cref="LeasedPullPipeline"/>).
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

            if (p.Source is Connectors.Pull.IPullSourceFactory pull)
            {
                // One worker pulls at a time under the pull's lease, from the cursor in the shared store (LeasedPullPipeline).
                if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.PostgresVariable)))
                {
                    problems.Add($"{recipe.Name}: pipeline '{p.Name}': a {p.SourceType} pipeline in cluster mode needs the shared metadata store ({Core.Metadata.SharedMetadata.PostgresVariable}): its lease and cursor are kept there for the worker that takes it over");
                }

                if (pull.Mapping is { } mapping && mapping.Mapper.ClusterProblem(mapping.Options) is { } mapped)
                {
                    problems.Add($"{recipe.Name}: pipeline '{p.Name}': a {p.SourceType} pull with mapping: does not run in cluster mode as configured: {mapped}");
                }

                if (p.Sinks.Any(s => s is Core.Pipeline.SinkFactory<Connectors.Lake.LakeSinkOptions>))
                {
                    // The lake appends, and its commit checks no lease: a page the previous holder was still committing
                    // when it lost the pull is committed again by the next holder (a keyed sink overwrites it instead).
                    problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink runs in cluster mode only in http pipelines so far (the lake appends, and a page the pull's previous holder was still committing when it lost the lease would land twice); use keyed sinks such as postgres");
                }

                continue;
            }

            if (p.SourceType is not ("http" or "postgres_cdc"))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': cluster mode runs only http, postgres_cdc, files, postgres_pull and salesforce sources so far, not '{p.SourceType}' (other pulls run without --cluster)");
                continue;
            }

            if (p.SourceType == "postgres_cdc" && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.PostgresVariable)))
            {
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': a postgres_cdc pipeline in cluster mode needs the shared metadata store ({Core.Metadata.SharedMetadata.PostgresVariable}): the worker that takes the slot over goes on from the checkpoints its predecessor committed there");
                continue;
            }

            if (p.SourceType != "http" && p.Sinks.Any(s => s is Core.Pipeline.SinkFactory<Connectors.Lake.LakeSinkOptions>))
            {
                // In an http pipeline the lake sink records the JetStream sequences it committed in the shared manifest
                // and skips them when a dead worker's batch comes again; a CDC holder's batches carry no such sequences,
                // and the old holder's sinks may still finish a batch the new holder writes too.
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink runs in cluster mode only in http pipelines so far (a {p.SourceType} pipeline's batches, written again after a take-over, would land twice); use keyed sinks such as postgres");
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
