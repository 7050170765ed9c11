namespace Sluice.Core.Pipeline;

/// <summary>
/// A source factory whose rows are changes of keyed tables: every row carries the change envelope
/// (<see cref="Schema.ChangeEnvelope"/>) and each table's schema its key (<see cref="Schema.TableSchema.Key"/>).
/// </summary>
public interface IChangeStreamSource
{
    /// <summary>
    /// Called at load for each sink that keeps rows by key (a mirror): the source checks at start, once it knows its
    /// tables, that each table the sink takes has a key, and stops the start naming the sink otherwise.
    /// </summary>
    void RequireKeys(IChangeStreamSink sink);
}

/// <summary>A sink factory that may need a change stream (a mirror): the recipe loader refuses it behind any other source.</summary>
public interface IChangeStreamSink
{
    /// <summary>The sink's name (<see cref="IBatchSink.Name"/>), for the error.</summary>
    string SinkName { get; }

    /// <summary>The option that asks for a change stream, as written in the recipe (<c>mode: mirror</c>), or null when this sink needs none.</summary>
    string? ChangeStreamOption { get; }

    /// <summary>The batch tables the sink takes (null: every table of the stream).</summary>
    IReadOnlyList<string>? Tables { get; }
}
