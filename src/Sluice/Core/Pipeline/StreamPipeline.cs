using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Core.Pipeline;

/// <summary>
/// Runs source -> steps -> sinks. Each sink has its own worker and its own bounded queue of
/// <see cref="SinkQueueCapacity"/> batches, so a slow sink falls behind without holding up the others until its queue
/// is full (then the source waits: memory stays bounded). Each sink's position is recorded after it commits (sinks that
/// commit together share one metadata transaction, <see cref="SinkCheckpointGroup"/>); the source
/// is acknowledged up to the slowest sink's position, and on restart reads again from there. A sink skips batches at or
/// below its own recorded position, and is idempotent for anything else replayed. A sink that opts in
/// (<see cref="IBatchSink.Joining"/>) gets the batches waiting in its queue joined into one write.
/// </summary>
public sealed class StreamPipeline : IRunnableSource, DeadLetters.IDeadLetterReplayer, Status.IStatusSource
{
    /// <summary>
    /// Small on purpose: a sink that is behind takes everything waiting as one write when it joins batches, so a longer
    /// queue buys no throughput, only memory (up to this many batches of 50,000 events per sink); the backlog waits in
    /// the source instead (the landing log, the WAL).
    /// </summary>
    public const int SinkQueueCapacity = 4;

    /// <summary>
    /// After a stop, how long sinks may take to write what is already queued before it is abandoned to the next start
    /// (nothing unwritten is checkpointed, so the source gives it again). 10 s: a healthy sink writes its few queued
    /// batches well within it, and the whole stop (this, the host's margin and closing) fits in the 30 s a supervisor
    /// commonly waits before SIGKILL; a slow sink (a server retried under back-off) would otherwise hold the exit.
    /// </summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>This pipeline's drain bound (<see cref="DrainTimeout"/> unless set: a test of what a drain writes gives it room on a loaded machine).</summary>
    public TimeSpan Drain { get; init; } = DrainTimeout;

    TimeSpan IRunnableSource.DrainTimeout => Drain;

    private readonly IEngineServices _services;
    private readonly ILogger _log;
    private readonly IStreamSource _source;
    private readonly IReadOnlyList<IBatchStep> _steps;
    private readonly IReadOnlyList<IBatchSink> _sinks;
    private readonly CheckpointStore _checkpoints;
    private readonly SinkCheckpointGroup _checkpointGroup;
    private readonly string _recipe;
    private readonly string _pipeline;
    private readonly long?[] _committed;
    private Status.PipelineStatus? _status;

    public StreamPipeline(IEngineServices services, string recipe, string pipeline, IStreamSource source, IReadOnlyList<IBatchStep> steps, IReadOnlyList<IBatchSink> sinks)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(sinks);
        _services = services;
        _source = source;
        _steps = steps;
        _sinks = sinks;
        _checkpoints = new CheckpointStore(services.Metadata, services.Time);
        _checkpointGroup = new SinkCheckpointGroup(_checkpoints.SetAll);
        _log = services.Logging.CreateLogger("Sluice.Pipeline");
        _recipe = recipe;
        _pipeline = pipeline;
        _committed = sinks.Select(s => Parse(_checkpoints.Get(CheckpointKey(s)))).ToArray();
    }

    public string CheckpointKey(IBatchSink sink) =>
        SinkCheckpointKey(_recipe, _pipeline, sink.Name) + (_source is ICheckpointScope { CheckpointScope: { } scope } ? ":" + scope : "");

    /// <summary>The checkpoint key of a sink of a recipe's pipeline, for code that restores one without running it (<c>sluice recover</c>).</summary>
    public static string SinkCheckpointKey(string recipe, string pipeline, string sink) => $"pipeline:{recipe}/{pipeline}:sink:{sink}";

    /// <summary>The stream source this pipeline reads (the host finds components that also serve HTTP through it).</summary>
    public IStreamSource Source => _source;

    /// <summary>Each sink's name and checkpoint key (for lag reporting).</summary>
    public IReadOnlyList<(string Sink, string CheckpointKey)> SinkCheckpoints => _sinks.Select(s => (s.Name, CheckpointKey(s))).ToList();

    /// <summary>The sinks (the host finds sinks that also serve HTTP through it).</summary>
    public IReadOnlyList<IBatchSink> Sinks => _sinks;

    /// <summary>The slowest sink's committed position (null while any sink has committed nothing).</summary>
    public long? Committed => _committed.Any(c => c is null) ? null : _committed.Min();

    /// <summary>Where reading resumes: after the slowest sink's position, or, for a source whose positions are only batch numbers, after the furthest one's (<see cref="ICheckpointScope.NumbersBatchesOnly"/>).</summary>
    private long? ResumeAfter => _source is ICheckpointScope { NumbersBatchesOnly: true } ? _committed.Max() : Committed;

    /// <summary>Counts what is read and what each sink commits, lets <c>sluice tap</c> see the batches, and passes the figures on to the source.</summary>
    public void AttachStatus(Status.PipelineStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        _status = status;
        for (var i = 0; i < _sinks.Count; i++)
        {
            var sink = status.Sink(_sinks[i].Name);
            sink.StartsAt(_committed[i]);
            (_sinks[i] as Status.IStatusSink)?.AttachStatus(sink);
        }

        (_source as Status.IStatusSource)?.AttachStatus(status);
    }

    public async Task<int> RunOnceAsync(CancellationToken ct) => await RunCoreAsync(once: true, null, ct).ConfigureAwait(false);

    public Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct) => RunCoreAsync(once: false, afterLoad, ct);

    private async Task<int> RunCoreAsync(bool once, Func<CancellationToken, Task>? afterLoad, CancellationToken ct)
    {
        var queues = _sinks.Select(_ => Channel.CreateBounded<RecordBatch>(new BoundedChannelOptions(SinkQueueCapacity) { SingleReader = true, SingleWriter = true })).ToArray();
        // Sinks stop on a sink failure or when the drain after a stop overruns; reading stops at once on a stop.
        using var abort = new CancellationTokenSource();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct, abort.Token);
        await using var onStop = ct.Register(() => abort.CancelAfter(Drain)).ConfigureAwait(false);
        var workers = _sinks.Select((sink, i) => Task.Run(() => SinkWorkerAsync(i, queues[i].Reader, afterLoad, abort), CancellationToken.None)).ToArray();
        var batches = 0;
        Exception? failure = null;
        try
        {
            await foreach (var raw in _source.ReadAsync(ResumeAfter, failed.Token).ConfigureAwait(false))
            {
                var batch = raw;
                using var ingest = PipelineTracing.Ingest(_recipe, _pipeline, raw);
                var trace = ingest?.Context ?? default;
                for (var s = 0; s < _steps.Count; s++)
                {
                    using var span = PipelineTracing.Step(_recipe, _pipeline, s, _steps[s], trace);
                    try
                    {
                        batch = await _steps[s].ApplyAsync(batch, failed.Token).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        PipelineTracing.Failed(span, e);
                        throw;
                    }
                }

                if (ingest is not null)
                {
                    batch = batch with { Trace = trace };
                }

                if (raw.Fence is not null && batch.Fence is null)
                {
                    // A step that builds a new batch keeps the leases it was read under.
                    batch = batch with { Fence = raw.Fence };
                }

                if (raw.Log is not null && batch.Log is null)
                {
                    batch = batch with { Log = raw.Log };
                }

                if (raw.SettledBelow is not null && batch.SettledBelow is null)
                {
                    batch = batch with { SettledBelow = raw.SettledBelow };
                }

                _status?.Read(batch.Count, batch.Position);
                _status?.Tap.Publish(null, batch);

                for (var i = 0; i < queues.Length; i++)
                {
                    if (_committed[i] is null || batch.Position > _committed[i])
                    {
                        await queues[i].Writer.WriteAsync(batch, failed.Token).ConfigureAwait(false);
                    }
                }

                batches++;
                if (once && _source.CaughtUp)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested || abort.IsCancellationRequested)
        {
            // Stopping (or a sink failed): what is queued is still written below, then the source is acknowledged.
        }
        catch (Exception e)
        {
            // The source (or a step) cannot go on: what is queued is still written, within the drain bound, then the
            // failure goes up to the host, which stops the run with it.
            failure = e;
            abort.CancelAfter(Drain);
        }
        finally
        {
            foreach (var q in queues) { q.Writer.TryComplete(); }
        }

        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested || failure is not null)
        {
            // The drain overran: unwritten batches are read again from the source at the next start.
        }

        if (Committed is { } position)
        {
            await _source.AcknowledgeAsync(position, CancellationToken.None).ConfigureAwait(false);
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        return batches;
    }

    private async Task SinkWorkerAsync(int index, ChannelReader<RecordBatch> queue, Func<CancellationToken, Task>? afterLoad, CancellationTokenSource abort)
    {
        var sink = _sinks[index];
        try
        {
            // Drains its queue even after a stop was requested: those batches were read, and writing them is the drain.
            while (await queue.WaitToReadAsync(abort.Token).ConfigureAwait(false))
            {
                if (!queue.TryRead(out var first)) { continue; }
                var (batch, joined) = await JoinAsync(first, queue, sink.Joining, abort.Token).ConfigureAwait(false);
                using (var span = first.Trace == default ? null
                    : PipelineTracing.Sink(_recipe, _pipeline, sink, batch, joined is null ? [first.Trace] : joined.Select(b => b.Trace).Where(t => t != default).ToList()))
                {
                    try
                    {
                        await WriteWaitingForSpaceAsync(sink, batch, abort.Token).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        PipelineTracing.Failed(span, e);
                        throw;
                    }
                }

                _committed[index] = batch.Position;
                _status?.Committed(sink.Name, batch.Count, batch.Position);
                _status?.Tap.Publish(sink.Name, batch);
                if (Committed is { } position)
                {
                    await _source.AcknowledgeAsync(position, abort.Token).ConfigureAwait(false);
                }

                if (afterLoad is not null && index == 0)
                {
                    await afterLoad(abort.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The pipeline stops and resumes from the last committed position at the next start; the host reports it.
            _status?.SinkFailed(sink.Name, ComponentFailedException.ReasonOf(e));
            await abort.CancelAsync().ConfigureAwait(false);
            throw new SluiceException($"sink '{sink.Name}': {ComponentFailedException.ReasonOf(e)}", e);
        }
    }

    /// <summary>
    /// Writes a batch and records the sink's checkpoint; a full disk is waited out (the batch written again, which a
    /// sink's idempotence makes safe) instead of stopping the pipeline: the source keeps what is not acknowledged.
    /// While it waits the sink is failing in <c>/healthz</c> with the reason: a stalled sink is never a silent one.
    /// </summary>
    private async Task WriteWaitingForSpaceAsync(IBatchSink sink, RecordBatch batch, CancellationToken ct)
    {
        var waiting = false;
        var component = $"{_recipe}: pipeline '{_pipeline}', sink {sink.Name}";
        try
        {
            while (true)
            {
                try
                {
                    await sink.WriteAsync(batch, CheckpointKey(sink), ct).ConfigureAwait(false);
                    CrashPoint.Reach("sink.written");
                    await _checkpointGroup.SetAsync(CheckpointKey(sink), batch.Position.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
                    CrashPoint.Reach("sink.checkpointed");
                    if (waiting)
                    {
                        PipelineSpaceLog.Resumed(_log, sink.Name);
                        _status?.Sink(sink.Name).Condition(null);
                    }

                    return;
                }
                catch (Exception e) when (Core.IO.DiskFull.Is(e))
                {
                    var detail = Core.IO.DiskFull.Describe(e, _services.Data.MetadataPath);
                    if (!waiting)
                    {
                        PipelineSpaceLog.Waiting(_log, sink.Name, detail, (int)DiskFullRetry.TotalSeconds);
                        _status?.Sink(sink.Name).Condition($"no space left on device, writing again every {DiskFullRetry.TotalSeconds:0} s");
                        _services.Health.Fail(component, $"no space left on device ({detail}); the batch is written again every {(int)DiskFullRetry.TotalSeconds} s and nothing is acknowledged to the source until it lands");
                    }

                    waiting = true;
                    await Task.Delay(DiskFullRetry, _services.Time, ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // Landed, or stopped: the next start reports afresh.
            if (waiting) { _services.Health.Clear(component); }
        }
    }

    /// <summary>How long a sink that met a full disk waits before it writes the same batch again.</summary>
    public static TimeSpan DiskFullRetry { get; } = TimeSpan.FromSeconds(2);

    /// <summary>The first batch and those that follow it in the queue (or arrive within the linger), as one; and the batches joined (null: only the first).</summary>
    private async Task<(RecordBatch Batch, List<RecordBatch>? Joined)> JoinAsync(RecordBatch first, ChannelReader<RecordBatch> queue, SinkJoining joining, CancellationToken ct)
    {
        List<RecordBatch>? batches = null;
        var rows = first.Count;
        var until = _services.Time.GetUtcNow() + joining.Linger;
        var joinedLog = first.Log?.Log;
        while (rows < joining.MaxRows)
        {
            // One write holds the events of one log (a sink skips replays per log): a batch of another waits for the next write.
            if (queue.TryPeek(out var peeked) && peeked.Log is { } other && joinedLog is not null && !string.Equals(other.Log, joinedLog, StringComparison.Ordinal))
            {
                break;
            }

            if (queue.TryRead(out var next))
            {
                joinedLog ??= next.Log?.Log;
                (batches ??= [first]).Add(next);
                rows += next.Count;
                continue;
            }

            var remaining = until - _services.Time.GetUtcNow();
            if (remaining <= TimeSpan.Zero || !await MoreWithinAsync(queue, remaining, ct).ConfigureAwait(false))
            {
                break;
            }
        }

        if (batches is null)
        {
            return (first, null);
        }

        // Empty batches only move the position; a join of nothing but those is the last of them as it is. The joined
        // batches' bookkeeping goes with the one write.
        var commits = batches.SelectMany(b => b.Commits).ToList();
        var fence = BatchFence.Merge(batches.Select(b => b.Fence));
        var log = LogSequences.Merge(batches.Select(b => b.Log));
        // Each batch's mark is a fact that stays true, so the highest holds for the joined write.
        var settled = batches.Max(b => b.SettledBelow);
        return (rows == 0 ? batches[^1] with { Commits = commits, Fence = fence, Log = log, SettledBelow = settled } : new RecordBatch(ColumnBatchConcat.Runs(batches.SelectMany(b => b.Tables)), batches[^1].Position) { Commits = commits, Fence = fence, Log = log, SettledBelow = settled }, batches);
    }

    /// <summary>False when the time is up or the queue is finished (a stop, the end of a run-once).</summary>
    private async Task<bool> MoreWithinAsync(ChannelReader<RecordBatch> queue, TimeSpan wait, CancellationToken ct)
    {
        try
        {
            return await queue.WaitToReadAsync(ct).AsTask().WaitAsync(wait, _services.Time, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>The source and sinks are what can take back their dead letters (<c>sluice dlq replay</c> finds them through the pipeline).</summary>
    private IEnumerable<DeadLetters.IDeadLetterReplayer> Replayers => _sinks.Cast<object>().Prepend(_source).OfType<DeadLetters.IDeadLetterReplayer>();

    public bool CanReplay(DeadLetters.DeadLetter letter) => Replayers.Any(r => r.CanReplay(letter));

    public Task<string?> ReplayAsync(DeadLetters.DeadLetter letter, CancellationToken ct) =>
        Replayers.First(r => r.CanReplay(letter)).ReplayAsync(letter, ct);

    private static long? Parse(string? value) => value is null ? null : long.Parse(value, CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync().ConfigureAwait(false);
        foreach (var sink in _sinks)
        {
            await sink.DisposeAsync().ConfigureAwait(false);
        }

        // Steps that hold something (a DuckDB session) let it go with the pipeline.
        foreach (var step in _steps.OfType<IDisposable>()) { step.Dispose(); }
    }
}

internal static partial class PipelineSpaceLog
{
    [LoggerMessage(9602, LogLevel.Error, "Sink {Sink}: no space left on device ({Detail}); the batch is written again every {RetrySeconds} s, and nothing is acknowledged to the source until it lands")]
    public static partial void Waiting(ILogger logger, string sink, string detail, int retrySeconds);

    [LoggerMessage(9603, LogLevel.Information, "Sink {Sink}: space again, writing resumed")]
    public static partial void Resumed(ILogger logger, string sink);
}
