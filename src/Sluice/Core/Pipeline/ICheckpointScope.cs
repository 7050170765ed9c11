namespace Sluice.Core.Pipeline;

/// <summary>
/// A stream source whose positions are not the same for every process reading it: in cluster mode each worker numbers
/// its own batches, so its sinks' checkpoints are kept under keys of their own (the pipeline's key and this scope), and
/// workers never overwrite each other's. Per-partition positions may later take the worker's place here.
/// </summary>
public interface ICheckpointScope
{
    /// <summary>Appended to each sink's checkpoint key (<c>worker:&lt;id&gt;</c>); null when this process's positions are the only ones (a files source of a single process).</summary>
    string? CheckpointScope { get; }

    /// <summary>
    /// True when the positions are only this process's batch numbers, not places in a log it reads again from (the
    /// cluster's JetStream source): its batches are then numbered on from the highest position any sink committed, not
    /// the lowest, since a sink skips batches at or below its own checkpoint and would skip new events numbered there
    /// while the slower sink committed them, and they were acknowledged.
    /// </summary>
    bool NumbersBatchesOnly => false;
}

/// <summary>The worker scope of checkpoint keys in cluster mode, and the key of what every worker of a sink shares.</summary>
public static class WorkerCheckpointScope
{
    private const string Prefix = "worker:";

    /// <summary>The scope of worker <paramref name="id"/>'s checkpoints.</summary>
    public static string Of(string id) => Prefix + id;

    /// <summary>
    /// A sink's checkpoint key without the worker's scope: the key of state every worker of the sink must see alike (the
    /// postgres sink's partition marks, which fence a worker that lost a partition against its new owner).
    /// </summary>
    public static string Shared(string checkpointKey)
    {
        ArgumentNullException.ThrowIfNull(checkpointKey);
        var at = checkpointKey.IndexOf(":" + Prefix, StringComparison.Ordinal);
        return at < 0 ? checkpointKey : checkpointKey[..at];
    }
}
