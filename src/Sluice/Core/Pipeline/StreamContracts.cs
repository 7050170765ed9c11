using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Core.Pipeline;

/// <summary>
/// What flows between a stream source, its steps and its sinks: the rows of one or more tables, and the source
/// position of the batch's last record (a log offset, an LSN). Positions only grow.
/// </summary>
public sealed record RecordBatch(IReadOnlyList<ColumnBatch> Tables, long Position)
{
    public RecordBatch(ColumnBatch table, long position) : this([table], position) { }

    public int Count => Tables.Sum(t => t.Count);

    /// <summary>The trace context of the batch's ingest span (<see cref="PipelineTracing"/>); default when tracing is off.</summary>
    public System.Diagnostics.ActivityContext Trace { get; init; }

    public ColumnBatch? Table(string name) => Tables.FirstOrDefault(t => t.Schema.Table == name);

    /// <summary>
    /// What the source asks to be committed with these rows by a sink that writes into the metadata store (the lake):
    /// a dropped file's ledger entry and dead letters. Empty for most sources.
    /// </summary>
    public IReadOnlyList<IMetadataCommit> Commits { get; init; } = [];

    /// <summary>The partition leases the batch was read under, for sinks that fence on them (<see cref="BatchFence"/>); null outside cluster partitions.</summary>
    public BatchFence? Fence { get; init; }

    /// <summary>The batch's events as sequences of a log every worker of a cluster reads, for sinks that skip a replay by them (<see cref="LogSequences"/>); null when positions are this process's own.</summary>
    public LogSequences? Log { get; init; }

    /// <summary>The snapshots the batch's snapshot rows were read by (<see cref="SnapshotRows"/>); empty for most sources and batches.</summary>
    public IReadOnlyList<SnapshotRows> Snapshots { get; init; } = [];

    /// <summary>
    /// A change source's low-water mark: no change with a lower <c>_lsn</c> can reach a sink of the pipeline any more
    /// (neither again, after a crash or a redelivery, nor late, stored after newer ones), so what a sink keeps only to
    /// refuse such a change (a mirror's tombstones) may go below it. Null when the source cannot prove one
    /// (docs/SCALING.md, "Tombstones and the low-water mark"). A fact once true, so any earlier value is still true.
    /// </summary>
    public long? SettledBelow { get; init; }
}

/// <summary>
/// A source's bookkeeping for a unit of its input (a dropped file: its ledger entry and dead letters), recorded in the
/// same metadata transaction as the unit's rows by a sink that commits there (the lake), so that rows and bookkeeping
/// land together or not at all. Idempotent: several such sinks, or the source itself once every sink has committed
/// (which it always does, for the sinks that cannot take it), record it once.
/// </summary>
public interface IMetadataCommit
{
    void Record(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx);
}

/// <summary>
/// A source whose output is an ordered stream of batches (change data capture, the HTTP landing log). It resumes
/// after a position and is told when every sink has committed up to one, which is when it may forget what came before
/// (confirm a replication slot's LSN, truncate a log).
/// </summary>
public interface IStreamSource : IAsyncDisposable
{
    /// <summary>Reads batches after <paramref name="resumeAfter"/> (null: from the beginning, or the source's initial snapshot).</summary>
    IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, CancellationToken ct);

    /// <summary>Every sink has committed every batch up to and including <paramref name="position"/>.</summary>
    Task AcknowledgeAsync(long position, CancellationToken ct);

    /// <summary>In <c>--once</c> mode: true when everything available at the start has been read.</summary>
    bool CaughtUp { get; }
}

/// <summary>A transformation between source and sinks (enrichment, flattening, normalisation). Stateless or self-contained.</summary>
public interface IBatchStep
{
    ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct);
}

/// <summary>
/// A destination. <see cref="WriteAsync"/> must be idempotent: a batch written again after a crash (same rows, maybe
/// cut differently) must not duplicate its effect. It retries transient failures itself and returns only once the
/// batch is committed (or dead-lettered, for sinks that dead-letter what they cannot deliver).
/// </summary>
public interface IBatchSink : IAsyncDisposable
{
    string Name { get; }

    /// <param name="checkpointKey">
    /// The key under which the runner records this sink's position. A sink that commits into the metadata store (the
    /// lake) writes it in its own transaction, so its data and position can never disagree.
    /// </param>
    Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct);

    /// <summary>
    /// Whether the runner may hand this sink several batches as one (<see cref="SinkJoining"/>). Off by default: a sink
    /// opts in when it costs less per row written in fewer, larger writes and reads its batch table by table.
    /// </summary>
    SinkJoining Joining => SinkJoining.None;
}

/// <summary>
/// How the runner joins the batches waiting in a sink's queue into one write: rows and the order between tables are
/// kept, the position is the last batch's. <see cref="Linger"/> is how long a batch may wait for more to arrive when
/// none is waiting (latency traded for fewer writes); joining stops at about <see cref="MaxRows"/> rows.
/// </summary>
public sealed record SinkJoining(int MaxRows, TimeSpan Linger)
{
    public static readonly SinkJoining None = new(0, TimeSpan.Zero);

    /// <summary>Joins only what is already waiting: no added latency, and a sink that falls behind catches up in larger writes.</summary>
    public static SinkJoining Waiting(int maxRows) => new(maxRows, TimeSpan.Zero);
}

/// <summary>A source factory that knows at load the tables its batches hold (the files source from its file types, a pull from its columns).</summary>
public interface IKnownBatchTables
{
    IReadOnlyList<TableSchema> BatchTables { get; }
}

/// <summary>A sink factory that can tell at load why it cannot take a table a source hands on (a missing key, no column to partition by).</summary>
public interface IChecksBatchTables
{
    /// <summary>Null when the sink can take the table; else why not, naming the sink, the table and what to change.</summary>
    string? Problem(TableSchema table);
}

public interface IStreamSourceFactory : ISourceFactory
{
    IStreamSource CreateStream(IEngineServices services);

    /// <summary>
    /// Why this source, as configured, cannot run with (or without) sinks, for <c>sluice validate</c>; null when it can.
    /// A source that lands its data itself when it has no sinks (<see cref="IStandaloneSource"/>) may need an option for that.
    /// </summary>
    string? SinksProblem(bool hasSinks) => null;
}

/// <summary>
/// A stream source that can tell, from where an event starts (a row's position column), the position right after it:
/// what a sink's checkpoint must be for the source to resume after that event (<c>sluice recover</c>, which finds
/// only the rows' own positions in the lake).
/// </summary>
public interface IEventEndFinder
{
    /// <summary>The position after the event starting at <paramref name="eventPosition"/>, or null when the source cannot tell.</summary>
    long? EventEnd(DataDirectory data, long eventPosition);
}

public interface IStepType
{
    string Name { get; }

    IStepFactory Parse(ConfigMap options, RecipeContext recipe);
}

public interface IStepFactory
{
    IBatchStep Create(IEngineServices services);
}

public interface ISinkType
{
    string Name { get; }

    ISinkFactory Parse(ConfigMap options, RecipeContext recipe);
}

public interface ISinkFactory
{
    IBatchSink Create(IEngineServices services);

    /// <summary>
    /// Whether the sink skips the rows of events it committed already by the batch's <see cref="RecordBatch.Log"/> and
    /// each row's position column (the lake sink, which appends), so a source on a cluster gives its rows their sequences.
    /// </summary>
    bool SkipsCommittedSequences => false;
}

/// <summary>The options of a sink that skips replayed events by their log sequences (<see cref="ISinkFactory.SkipsCommittedSequences"/>).</summary>
public interface ISkipsCommittedSequences;

/// <summary>
/// A stream source that can give each batch its events as sequences of a log every worker of a cluster reads
/// (<see cref="RecordBatch.Log"/>) and each row its sequence as <c>_offset</c>, told to when a sink of its pipeline
/// skips replays by them (<see cref="ISinkFactory.SkipsCommittedSequences"/>).
/// </summary>
public interface ILogSequencedSource
{
    void CarrySequences();
}

/// <summary>
/// The factory of a source whose streams are <see cref="ILogSequencedSource"/> in cluster mode (files, pulls): with a
/// sink that skips replays, each table it hands on there has the <c>_offset</c> column besides those it declares
/// (<see cref="IKnownBatchTables"/>), which a recipe loaded for a cluster declares at load too (<see cref="PipelineShapeCheck"/>).
/// </summary>
public interface ILogSequencedSourceFactory;
