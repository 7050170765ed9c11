using System.Collections.Concurrent;

namespace Sluice.Core.Status;

/// <summary>
/// One pipeline's figures: what its source read (records, batches, position), what each sink committed, its state and
/// last error, and what the source reports about its backlog (files waiting, landed bytes, a replication slot).
/// Updated by the pipeline as it runs (counters, lock-free); lag is computed when read.
/// </summary>
public sealed class PipelineStatus
{
    /// <summary>
    /// Batches read and not yet committed by every sink, kept for the lag in seconds. The pipeline's sink queues bound
    /// this (a few batches per sink); past this many the newest are not tracked, which keeps the oldest (the lag) right.
    /// </summary>
    private const int ReadsTracked = 1024;

    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, SinkStatus> _sinks = new(StringComparer.Ordinal);
    private readonly Queue<(long Position, DateTimeOffset At)> _reads = new();
    private readonly Lock _lock = new();
    private long _recordsIn;
    private long _batchesIn;
    private long _position = -1;
    private long _lastReadTicks;
    private volatile string _state = "starting";
    private volatile string? _condition;
    private (string Reason, DateTimeOffset At)? _lastError;

    internal PipelineStatus(string recipe, string name, string sourceType, TimeProvider time)
    {
        Recipe = recipe;
        Name = name;
        SourceType = sourceType;
        _time = time;
    }

    public string Recipe { get; }

    public string Name { get; }

    public string QualifiedName => $"{Recipe}/{Name}";

    public string SourceType { get; }

    public long RecordsIn => Interlocked.Read(ref _recordsIn);

    public long BatchesIn => Interlocked.Read(ref _batchesIn);

    public string State => _state;

    public StatusHistory History { get; } = new(StatusBoard.HistoryLength);

    /// <summary>The last batches read and what became of each in every sink.</summary>
    public RecentBatches Batches { get; } = new();

    /// <summary>Records flowing through, for <c>sluice tap</c>; costs nothing while nobody listens.</summary>
    public TapHub Tap { get; } = new();

    /// <summary>The source's backlog (files waiting in incoming/, landed bytes not yet committed), read when figures are read.</summary>
    public Func<Backlog?>? Backlog { get; set; }

    /// <summary>The drop folder of a files source (its incoming/, processing/, failed/), for the console's Files page.</summary>
    public string? DropFolder { get; set; }

    /// <summary>The replication slot as last checked (CDC sources), read when figures are read.</summary>
    public Func<SlotFigures?>? Slot { get; set; }

    /// <summary>The source's table snapshots, newest first (CDC sources), read when figures are read.</summary>
    public Func<IReadOnlyList<SnapshotFigures>?>? Snapshots { get; set; }

    public IReadOnlyList<SinkStatus> Sinks => _sinks.Values.OrderBy(s => s.Order).ToList();

    /// <summary>The sink's figures, created on first use (in the pipeline's sink order).</summary>
    public SinkStatus Sink(string name) => _sinks.GetOrAdd(name, n => new SinkStatus(n, _sinks.Count));

    /// <summary>
    /// The source gave a batch of <paramref name="records"/> ending at <paramref name="position"/> (null: a source
    /// without positions), of <paramref name="bytes"/> when the source knows its size apart from its positions (a file).
    /// </summary>
    public void Read(int records, long? position = null, long? bytes = null)
    {
        Interlocked.Add(ref _recordsIn, records);
        Interlocked.Increment(ref _batchesIn);
        var now = _time.GetUtcNow();
        Interlocked.Exchange(ref _lastReadTicks, now.UtcTicks);
        Batches.Read(now, records, position, bytes);
        if (position is not { } p) { return; }
        Interlocked.Exchange(ref _position, p);
        lock (_lock)
        {
            if (_reads.Count < ReadsTracked) { _reads.Enqueue((p, now)); }
        }
    }

    /// <summary>A sink committed a batch of <paramref name="records"/> up to <paramref name="position"/>.</summary>
    public void Committed(string sink, int records, long? position = null)
    {
        var now = _time.GetUtcNow();
        Sink(sink).Committed(records, position, now);
        Batches.Outcome(sink, "committed", null, position, now, _sinks.Count);
        if (position is null) { return; }
        var slowest = _sinks.Values.Min(s => s.Position ?? -1);
        lock (_lock)
        {
            while (_reads.TryPeek(out var r) && r.Position <= slowest) { _reads.Dequeue(); }
        }
    }

    /// <summary>
    /// The oldest batch the sink has no outcome for ended otherwise than committed (<paramref name="outcome"/>: a file
    /// that <c>failed</c> or was a <c>duplicate</c>), for sources without positions.
    /// </summary>
    public void NotCommitted(string sink, string outcome, string? reason) =>
        Batches.Outcome(sink, outcome, reason, null, _time.GetUtcNow(), _sinks.Count);

    /// <summary>A sink failed: the batches it had not committed failed there (the pipeline stops and reads them again at the next start).</summary>
    public void SinkFailed(string sink, string reason) => Batches.Failed(sink, reason, _time.GetUtcNow(), _sinks.Count);

    public void Running()
    {
        _state = "running";
        _condition = null;
    }

    public void Stopped() => _state = "stopped";

    public void Failed(string reason)
    {
        _state = "failed";
        lock (_lock) { _lastError = (reason, _time.GetUtcNow()); }
    }

    /// <summary>What the pipeline is waiting out (a full disk, a lost connection being retried), or null when nothing.</summary>
    public void Condition(string? condition) => _condition = condition;

    internal StatusSample Sample(DateTimeOffset now)
    {
        var sinks = Sinks;
        return new StatusSample(now.UtcDateTime, RecordsIn, sinks.Count == 0 ? 0 : sinks.Min(s => s.RecordsOut), SafeBacklog()?.Value,
            sinks.Count == 0 ? 0 : sinks.Max(s => LagSeconds(s, now)));
    }

    internal PipelineView View(DateTimeOffset now, bool history)
    {
        (string Reason, DateTimeOffset At)? error;
        lock (_lock) { error = _lastError; }
        var position = Interlocked.Read(ref _position);
        var lastRead = Interlocked.Read(ref _lastReadTicks);
        return new PipelineView(
            Recipe, Name, SourceType, State, _condition, error?.Reason, error?.At.UtcDateTime,
            RecordsIn, BatchesIn, lastRead == 0 ? null : new DateTime(lastRead, DateTimeKind.Utc), position < 0 ? null : position,
            SafeBacklog(), SafeSlot(),
            Sinks.Select(s => s.View(position < 0 ? null : position, LagSeconds(s, now))).ToList(),
            history ? History.Samples : null, Probe(Snapshots))
        {
            Batches = Batches.Views,
        };
    }

    /// <summary>Age of the oldest batch read that this sink has not committed; a slot's own figure when the source has one (it sees the server's side too).</summary>
    private double LagSeconds(SinkStatus sink, DateTimeOffset now)
    {
        var at = sink.Position ?? -1;
        lock (_lock)
        {
            foreach (var r in _reads)
            {
                if (r.Position > at) { return Math.Max(0, (now - r.At).TotalSeconds); }
            }
        }

        return 0;
    }

    private Backlog? SafeBacklog() => Probe(Backlog);

    private SlotFigures? SafeSlot() => Probe(Slot);

    /// <summary>A probe that fails (a folder gone for a moment) shows as unknown; the figures must still answer.</summary>
    private static T? Probe<T>(Func<T?>? probe) where T : class
    {
        try
        {
            return probe?.Invoke();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or SluiceException)
        {
            return null;
        }
    }
}

/// <summary>One sink's figures within its pipeline.</summary>
public sealed class SinkStatus
{
    private long _recordsOut;
    private long _batchesOut;
    private long _position = -1;
    private long _lastCommitTicks;
    private volatile string? _condition;

    internal SinkStatus(string name, int order)
    {
        Name = name;
        Order = order;
    }

    public string Name { get; }

    internal int Order { get; }

    public long RecordsOut => Interlocked.Read(ref _recordsOut);

    public long BatchesOut => Interlocked.Read(ref _batchesOut);

    public long? Position => Interlocked.Read(ref _position) is var p && p >= 0 ? p : null;

    /// <summary>Where the sink stands before it commits anything this run (its checkpoint), so its lag shows from the start.</summary>
    public void StartsAt(long? position)
    {
        if (position is { } p) { Interlocked.CompareExchange(ref _position, p, -1); }
    }

    /// <summary>What the sink is waiting out (a full disk, a server away), or null.</summary>
    public void Condition(string? condition) => _condition = condition;

    /// <summary>The sink's circuit breaker (<c>closed</c>, <c>open</c>, <c>half_open</c>, <c>isolated</c>), for sinks that have one.</summary>
    public Func<string>? Breaker { get; set; }

    private long _retries;
    private volatile SinkRetry? _retry;

    /// <summary>Failed attempts the sink retried since start.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>A write failed for a reason waiting cures and is tried again (<paramref name="attempt"/>: failed attempts so far).</summary>
    public void Retrying(int attempt, string error, DateTimeOffset at)
    {
        Interlocked.Increment(ref _retries);
        _retry = new SinkRetry(attempt, error, _retry?.Since ?? at.UtcDateTime);
    }

    /// <summary>The write went through (or was given up and dead-lettered): no longer retrying.</summary>
    public void Recovered() => _retry = null;

    internal void Committed(int records, long? position, DateTimeOffset at)
    {
        Interlocked.Add(ref _recordsOut, records);
        Interlocked.Increment(ref _batchesOut);
        if (position is { } p) { Interlocked.Exchange(ref _position, p); }
        Interlocked.Exchange(ref _lastCommitTicks, at.UtcTicks);
    }

    internal SinkView View(long? read, double lagSeconds)
    {
        var last = Interlocked.Read(ref _lastCommitTicks);
        return new SinkView(Name, RecordsOut, BatchesOut, last == 0 ? null : new DateTime(last, DateTimeKind.Utc), Position,
            read is { } r && Position is { } p ? Math.Max(0, r - p) : null, lagSeconds, _condition, Breaker?.Invoke(), Retries, _retry);
    }
}
