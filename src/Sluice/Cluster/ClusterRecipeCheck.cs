using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// What cluster mode runs so far: HTTP pipelines whose sinks are keyed and idempotent, or the lake sink, which skips
/// events it committed already (since a batch a dead worker held is done again by another), and batches of one pipeline commit on several workers at once in no shared order;
/// and <c>postgres_cdc</c> pipelines, whose slot is read by one worker at a time (<see cref="StandByPipeline"/>), which
/// need the shared metadata store (the next holder's position, the partitions' leases), with keyed sinks or, through
/// JetStream, the lake sink (a change log or a mirror: a change that comes again is skipped by its stream sequence, and
/// a mirrored table's changes are one partition, read in order by one worker at a time), or with the holder the lake
/// sink as a mirror (a change written again, or late, is at or below its key's newest position in the lake); and files sources, which land in the lake themselves (claims and the
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
            if (lake is not null && p.SourceType == "postgres_cdc" && lake.Options.Mode != Connectors.Lake.LakeSinkMode.Mirror
                && ClusterOptions.CdcByHolder(Environment.GetEnvironmentVariable))
            {
                // Through JetStream (the default) a CDC pipeline's batches carry the stream's sequences, which the lake
                // sink records in the shared manifest and skips when a batch comes again, in either mode. A holder's
                // batches carry none: a dead holder's batch is skipped by the sink's checkpoint (committed with the lake's
                // files), but a holder that lost the slot's lock alive (cut off, paused) lets its sinks finish the batch
                // they hold, unfenced, after the new holder read that checkpoint and wrote the same changes: a change log
                // would hold them twice.
                // A mirror runs (docs/SCALING.md, "The lake mirror with the holder"): what it shows is each key's change
                // at the highest (_lsn, _seq) stored, deletes as tombstones and the last truncate kept through folds
                // (MirrorSql.Folded), and a change is the same (position and values) whichever holder read it. So a batch
                // written twice collapses on every read and fold; a change older than what the lake holds for its key
                // is left out by the write's check per key (MirrorKeyCheck) or, committed in a race with the newer one,
                // loses to it on every read and fold, before or after a fold; a checkpoint the late holder set back only
                // makes a later take-over write more changes again, which the same rules absorb.
                problems.Add($"{recipe.Name}: pipeline '{p.Name}': the lake sink runs in a postgres_cdc pipeline in cluster mode with {ClusterOptions.CdcVariable}=holder only as a mirror (mode: mirror), or as a change log through JetStream ({ClusterOptions.CdcVariable}=jetstream, the default): a holder's batches carry no stream sequence, and a holder that lost the slot alive may still commit a batch the next holder wrote too, which a change log would hold twice");
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
