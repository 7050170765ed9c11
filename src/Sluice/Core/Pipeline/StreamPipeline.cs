using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;

namespace Sluice.Core.Pipeline;

/// <summary>
/// Runs source -> steps -> sinks. Each sink has its own worker and its own bounded queue of
/// <see cref="SinkQueueCapacity"/> batches, so a slow sink falls behind without holding up the others until its queue
/// is full (then the source waits: memory stays bounded). Each sink's position is recorded after it commits; the source
/// is acknowledged up to the slowest sink's position, and on restart reads again from there. A sink skips batches at or
/// below its own recorded position, and is idempotent for anything else replayed.
/// </summary>
public sealed class StreamPipeline : IRunnableSource, DeadLetters.IDeadLetterReplayer
{
    public const int SinkQueueCapacity = 16;

    /// <summary>After a stop, how long sinks may take to write what is already queued before it is abandoned to the next start.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    private readonly IEngineServices _services;
    private readonly IStreamSource _source;
    private readonly IReadOnlyList<IBatchStep> _steps;
    private readonly IReadOnlyList<IBatchSink> _sinks;
    private readonly CheckpointStore _checkpoints;
    private readonly ILogger _log;
    private readonly string _prefix;
    private readonly long?[] _committed;

    public StreamPipeline(IEngineServices services, string recipe, string pipeline, IStreamSource source, IReadOnlyList<IBatchStep> steps, IReadOnlyList<IBatchSink> sinks)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(sinks);
        _services = services;
        _source = source;
        _steps = steps;
        _sinks = sinks;
        _checkpoints = new CheckpointStore(services.Metadata, services.Time);
        _log = services.Logging.CreateLogger("Sluice.Pipeline");
        _prefix = $"pipeline:{recipe}/{pipeline}";
        _committed = sinks.Select(s => Parse(_checkpoints.Get(CheckpointKey(s)))).ToArray();
    }

    public string CheckpointKey(IBatchSink sink) => $"{_prefix}:sink:{sink.Name}";

    /// <summary>The stream source this pipeline reads (the host finds components that also serve HTTP through it).</summary>
    public IStreamSource Source => _source;

    /// <summary>Each sink's name and checkpoint key (for lag reporting).</summary>
    public IReadOnlyList<(string Sink, string CheckpointKey)> SinkCheckpoints => _sinks.Select(s => (s.Name, CheckpointKey(s))).ToList();

    /// <summary>The sinks (the host finds sinks that also serve HTTP through it).</summary>
    public IReadOnlyList<IBatchSink> Sinks => _sinks;

    /// <summary>The slowest sink's committed position (null while any sink has committed nothing).</summary>
    public long? Committed => _committed.Any(c => c is null) ? null : _committed.Min();

    public async Task<int> RunOnceAsync(CancellationToken ct) => await RunCoreAsync(once: true, null, ct).ConfigureAwait(false);

    public Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct) => RunCoreAsync(once: false, afterLoad, ct);

    private async Task<int> RunCoreAsync(bool once, Func<CancellationToken, Task>? afterLoad, CancellationToken ct)
    {
        var queues = _sinks.Select(_ => Channel.CreateBounded<RecordBatch>(new BoundedChannelOptions(SinkQueueCapacity) { SingleReader = true, SingleWriter = true })).ToArray();
        // Sinks stop on a sink failure or when the drain after a stop overruns; reading stops at once on a stop.
        using var abort = new CancellationTokenSource();
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct, abort.Token);
        await using var onStop = ct.Register(() => abort.CancelAfter(DrainTimeout)).ConfigureAwait(false);
        var workers = _sinks.Select((sink, i) => Task.Run(() => SinkWorkerAsync(i, queues[i].Reader, afterLoad, abort), CancellationToken.None)).ToArray();
        var batches = 0;
        try
        {
            await foreach (var raw in _source.ReadAsync(Committed, failed.Token).ConfigureAwait(false))
            {
                var batch = raw;
                foreach (var step in _steps)
                {
                    batch = await step.ApplyAsync(batch, failed.Token).ConfigureAwait(false);
                }

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
        finally
        {
            foreach (var q in queues) { q.Writer.TryComplete(); }
        }

        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The drain overran: unwritten batches are read again from the source at the next start.
        }

        if (Committed is { } position)
        {
            await _source.AcknowledgeAsync(position, CancellationToken.None).ConfigureAwait(false);
        }

        return batches;
    }

    private async Task SinkWorkerAsync(int index, ChannelReader<RecordBatch> queue, Func<CancellationToken, Task>? afterLoad, CancellationTokenSource abort)
    {
        var sink = _sinks[index];
        try
        {
            // Drains its queue even after a stop was requested: those batches were read, and writing them is the drain.
            await foreach (var batch in queue.ReadAllAsync(abort.Token).ConfigureAwait(false))
            {
                await sink.WriteAsync(batch, CheckpointKey(sink), abort.Token).ConfigureAwait(false);
                _checkpoints.Set(CheckpointKey(sink), batch.Position.ToString(CultureInfo.InvariantCulture));
                _committed[index] = batch.Position;
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
            PipelineLog.SinkFailed(_log, e, sink.Name);
            await abort.CancelAsync().ConfigureAwait(false);
            throw;
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
    }
}

internal static partial class PipelineLog
{
    [LoggerMessage(4001, LogLevel.Error, "Sink {Sink} failed; the pipeline stops and resumes from the last committed position at the next start")]
    public static partial void SinkFailed(ILogger logger, Exception error, string sink);
}
