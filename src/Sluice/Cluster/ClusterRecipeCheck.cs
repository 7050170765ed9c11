using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// What cluster mode runs so far: HTTP pipelines whose sinks are keyed and idempotent, or the lake sink, which skips
/// events it committed already (since a batch a dead worker held is done again by another), and batches of one pipeline commit on several workers at once in no shared order;
/// and <c>postgres_cdc</c> pipelines, whose slot is read by one worker at a time (<see cref="StandByPipeline"/>), which
/// need the shared metadata store (the next holder's position, the partitions' leases), with keyed sinks or, through
/// JetStream, the lake sink (a change log or a mirror: a change that comes again is skipped by its stream sequence, and
/// a mirrored table's changes are one partition, read in order by one worker at a time); and files sources, which land in the lake themselves (claims and the
/// ledger in the shared store make each file land once) or hand each file to keyed sinks or the lake sink (a file a dead
/// worker held is handed on again by the worker that takes its claim over; the lake sink skips the rows it committed); and pulls (<c>postgres_pull</c>, <c>salesforce</c>) with keyed sinks or the lake sink (which skips
/// the rows of a page it committed by their numbers in the pull's cursor), or with a <c>mapping:</c> whose store
/// every worker shares, under one lease (<see cref="LeasedPullPipeline"/>).
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
            if (p.SourceType == "files")
            {
                // Without sinks a files source lands in the lake itself: each worker claims files of the shared drop folder
                // in the shared store, and the ledger and lake commit of a file are one transaction there (docs/SCALING.md,
                // "Files"). With sinks each worker hands its files to its sinks at positions of its own (FileUnits); a dead
                // worker's file is handed on again by the worker that takes its claim over, which keyed sinks absorb and
                // the lake sink skips by the file's row numbers it committed (FilesSource.Unit).
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

                // A lake sink appends: a page the previous holder committed, or was still committing when it lost the
                // lease, is handed on again by the next; its rows carry their numbers in the cursor's log, which the lake
                // records with its commit and skips (PullStreamSource.CarrySequences).
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

            var lake = p.Sinks.OfType<Core.Pipeline.SinkFactory<Connectors.Lake.LakeSinkOptions>>().FirstOrDefault();
            if (lake is not null && p.SourceType == "postgres_cdc" && ClusterOptions.CdcByHolder(Environment.GetEnvironmentVariable))
            {
                // Through JetStream (the default) a CDC pipeline's batches carry the stream's sequences, which the lake
                // sink records in the shared manifest and skips when a batch comes again, as in http pipelines, in either
                // mode; a holder's batches carry none, and the old holder's sinks may still finish a batch the new holder
                // writes too. A mirror's copy would be harmless beside its original, but not once a fold has dropped the
                // delete or truncate after it: the deleted row would be back.
                var harm = lake.Options.Mode == Connectors.Lake.LakeSinkMode.Mirror
                    ? "a change written again after a take-over, once a fold has dropped the delete after it, would bring the deleted row back"
                    : "a batch written again after a take-over would land twice";
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink runs in a postgres_cdc pipeline in cluster mode only through JetStream ({ClusterOptions.CdcVariable}=jetstream, the default), not with {ClusterOptions.CdcVariable}=holder ({harm})");
            }
        }

        // Jobs run once per slot across the workers (JobLeases); their commits, a reminder's send and a backfill's page are made under the run's lease (JobFence).
        foreach (var job in recipe.Jobs)
        {
            if (!ClusterJobs.Runs(job))
            {
                problems.Add($"{recipe.Name}: {ClusterJobs.Refusal(job)}");
            }
            else if ((ClusterJobs.FeedProblem(recipe, job) ?? ClusterJobs.Problem(job, Environment.GetEnvironmentVariable)) is { } problem)
            {
                problems.Add($"{recipe.Name}: {problem}");
            }
        }

        return problems;
    }
}
