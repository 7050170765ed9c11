namespace Sluice.Core.Status;

// What /api/status answers and `sluice status --format json` prints. Times are UTC DateTime, so JSON writes them with
// a Z; positions are the source's own (landing-log bytes, a WAL LSN as a number), lag in positions is their difference.

public sealed record StatusSnapshot(
    DateTime At, DateTime Started, int Pid, IReadOnlyList<PipelineView> Pipelines, IReadOnlyList<JobView> Jobs,
    IReadOnlyList<DeadLetterCount> DeadLetters)
{
    /// <summary>Every declared alert's state (an init property, so readers of older processes' JSON get none).</summary>
    public IReadOnlyList<AlertView> Alerts { get; init; } = [];

    /// <summary>The cluster's workers from the shared registry (<c>run --cluster</c>); none for a single process.</summary>
    public IReadOnlyList<WorkerView> Workers { get; init; } = [];

    /// <summary>
    /// The cluster's latest CDC snapshot requests from the shared store, with the worker running each (<c>run
    /// --cluster</c>: any worker shows them, whichever holds the slot); none for a single process, whose pipelines show theirs.
    /// </summary>
    public IReadOnlyList<SnapshotRequestView> Snapshots { get; init; } = [];
}

public sealed record PipelineView(
    string Recipe, string Pipeline, string Source, string State, string? Condition, string? LastError, DateTime? LastErrorAt,
    long RecordsIn, long BatchesIn, DateTime? LastReadAt, long? Position, Backlog? Backlog, SlotFigures? Slot,
    IReadOnlyList<SinkView> Sinks, IReadOnlyList<StatusSample>? History, IReadOnlyList<SnapshotFigures>? Snapshots = null)
{
    /// <summary>The last batches read (<see cref="RecentBatches"/>), newest first.</summary>
    public IReadOnlyList<BatchView> Batches { get; init; } = [];
}

/// <summary>
/// One batch a pipeline read: when, its records, its size (<see cref="Bytes"/>: a file's size, or the landing-log bytes
/// from <see cref="PositionFrom"/> to <see cref="PositionTo"/>), the seconds from the read to the last sink's outcome
/// (null while a sink has none), and each sink's outcome (<c>committed</c>, <c>failed</c>, <c>duplicate</c>).
/// </summary>
public sealed record BatchView(DateTime At, long Records, long? Bytes, long? PositionFrom, long? PositionTo, double? DurationSeconds, IReadOnlyList<BatchOutcome> Sinks);

/// <summary>What became of a batch in one sink, when, and why when it failed.</summary>
public sealed record BatchOutcome(string Sink, string Outcome, DateTime At, string? Error);

public sealed record SinkView(
    string Sink, long RecordsOut, long BatchesOut, DateTime? LastCommitAt, long? Position, long? LagPositions, double LagSeconds, string? Condition,
    string? Breaker, long Retries = 0, SinkRetry? Retry = null);

/// <summary>A sink writing again after failures that waiting cures: the failed attempts so far, the last error, since when it fails.</summary>
public sealed record SinkRetry(int Attempt, string LastError, DateTime Since);

public sealed record JobView(
    string Recipe, string Job, string? Schedule, bool Running, DateTime? LastRunAt, double? LastDurationSeconds, string? LastOutcome,
    string? LastMessage, DateTime? NextRunAt, long Runs, long Failures);

/// <summary>Pending dead letters of a source with one reason class (<see cref="DeadLetterReasons.Class"/>).</summary>
public sealed record DeadLetterCount(string Recipe, string Source, string Reason, long Count);

/// <summary>What waits in front of a source: <c>files</c> in incoming/, <c>bytes</c> landed and not yet committed by every sink.</summary>
public sealed record Backlog(long Value, string Unit);

/// <summary>A replication slot as last checked.</summary>
public sealed record SlotFigures(string Slot, long ConfirmedLsn, long LagBytes, double LagSeconds, string WalStatus, long? SafeWalBytes, double SecondsSinceMessage, DateTime CheckedAt);

/// <summary>
/// A table snapshot of a CDC source (<c>sluice cdc snapshot</c>, or the rest of a resumed initial snapshot): rows and
/// chunks every sink committed, of <see cref="Total"/> counted at its start; <see cref="State"/> is queued, running,
/// done or failed.
/// </summary>
public sealed record SnapshotFigures(long Id, string Table, string Kind, string State, long RowsRead, long? Total, long Chunks, long Superseded, string? Error);

/// <summary>
/// A CDC snapshot request in a cluster's shared store (<c>sluice cdc snapshot --cluster</c>, or the rest of an interrupted
/// initial snapshot): its pipeline and slot, the figures a pipeline shows (<see cref="SnapshotFigures"/>), the worker
/// that last moved it (started it, recorded a chunk, ended it; null for one an older Sluice moved) and when.
/// </summary>
public sealed record SnapshotRequestView(
    string Pipeline, string Slot, long Id, string Table, string Kind, string State, long RowsRead, long? Total, long Chunks, long Superseded, string? Error,
    string? Worker, DateTime UpdatedAt);

/// <summary>One point of a pipeline's history: counters (rates come from two points), backlog, the slowest sink's lag.</summary>
public sealed record StatusSample(DateTime At, long RecordsIn, long RecordsOut, long? Backlog, double LagSeconds);

/// <summary>One declared alert (recipe <c>alerts:</c>): <c>ok</c> or <c>firing</c> since when, and why; notices not yet delivered.</summary>
public sealed record AlertView(
    string Recipe, string Alert, string Kind, string Severity, string Subject, string State, DateTime Since, string Message, int NoticesPending);
