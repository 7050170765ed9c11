namespace Sluice.Core.Pipeline;

/// <summary>
/// A stream source whose positions are not the same for every process reading it: in cluster mode each worker numbers
/// its own batches, so its sinks' checkpoints are kept under keys of their own (the pipeline's key and this scope), and
/// workers never overwrite each other's. Per-partition positions may later take the worker's place here.
/// </summary>
public interface ICheckpointScope
{
    /// <summary>Appended to each sink's checkpoint key (<c>worker:&lt;id&gt;</c>).</summary>
    string CheckpointScope { get; }
}
