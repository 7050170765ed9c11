namespace Sluice.Core.Pipeline;

/// <summary>
/// A stream source whose rows are changes of keyed tables: every row carries the change envelope
/// (<see cref="Schema.ChangeEnvelope"/>) and each table's schema its key (<see cref="Schema.TableSchema.Key"/>): what a
/// mirror needs. The recipe loader pairs it with each <see cref="IChangeStreamSink"/> of its pipeline.
/// </summary>
public interface IChangeSourceFactory : IStreamSourceFactory
{
    /// <summary>Why a mirror of the batch table <paramref name="table"/> would miss some of its changes (its deletes are not passed on, ...), or null.</summary>
    string? MirrorProblem(string table);

    /// <summary>
    /// Called at load for each sink that keeps rows by key (a mirror): the source checks at start, once it knows its
    /// tables, that each table the sink needs a source key for has one, and stops the start naming the sink otherwise.
    /// </summary>
    void RequireKeys(IChangeStreamSink sink);
}

/// <summary>
/// A sink factory that may need a change stream (a mirror). The recipe loader refuses it behind any other source, and
/// behind a change source registers it for the key check (<see cref="IChangeSourceFactory.RequireKeys"/>) and lets it
/// check its own options against the source (<see cref="CheckSource"/>).
/// </summary>
public interface IChangeStreamSink
{
    /// <summary>The sink's name (<see cref="IBatchSink.Name"/>), for the error.</summary>
    string SinkName { get; }

    /// <summary>The option that asks for a change stream, as written in the recipe (<c>mode: mirror</c>), or null when this sink needs none.</summary>
    string? ChangeStreamOption { get; }

    /// <summary>Whether the sink takes the batch table <paramref name="table"/> and keys it by the source's key (false: not taken, or keyed by the sink's own options).</summary>
    bool NeedsSourceKey(string table);

    /// <summary>
    /// Whether the sink keeps the batch table <paramref name="table"/> by key (a mirror of it, keyed by the source's key
    /// or its own), so that every change of the table, a truncate with the rows around it, must reach it in order: in
    /// cluster mode such a table is one partition of the change stream.
    /// </summary>
    bool KeepsByKey(string table) => NeedsSourceKey(table);

    /// <summary>The sink's own checks of its options against the change source (reported at its own option lines).</summary>
    void CheckSource(IChangeSourceFactory source)
    {
    }
}

/// <summary>
/// A job that sends rows through a pipeline's steps and sinks (<c>postgres_backfill</c>): rows read from a table, not
/// changes from a slot, so the recipe loader refuses a mirror among the sinks it feeds.
/// </summary>
public interface IRowFeedingJob
{
    /// <summary>The pipeline whose sinks take the rows.</summary>
    string Pipeline { get; }

    /// <summary>The sinks taken (empty: every sink of the pipeline).</summary>
    IReadOnlyList<string> Sinks { get; }
}
