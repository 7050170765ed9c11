using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Serving;

namespace Sluice.Connectors.Nats;

/// <summary>
/// The <c>http</c> source in cluster mode. Ingest is the single-process endpoint (validation, tenants, dead letters),
/// but an accepted request is published to the stream's JetStream log and answered only once JetStream stored it
/// (<see cref="JetStreamLog"/>). The pipeline reads from the stream's durable consumer, which every worker of the
/// pipeline shares: each message goes to one worker, and is acknowledged only when every sink of that worker committed
/// the batch it was in. A worker that dies leaves its messages unacknowledged; JetStream gives them to another after
/// the ack wait, and keyed sinks make the second write the same as the first.
/// </summary>
/// <remarks>
/// Positions are this worker's own batch numbers, counting on from its last checkpoint (kept under its worker id,
/// <see cref="CheckpointScope"/>): a redelivered message may be older than one this worker already committed, so the
/// stream sequence cannot be a position a sink skips below. Rows
/// carry the stream sequence as <c>_offset</c> (the same for every delivery of an event).
/// </remarks>
public sealed class ClusterHttpSource : IStreamSource, IHttpEndpoints, IDeadLetterReplayer, Core.Status.IStatusSource, ICheckpointScope
{
    private static readonly TimeSpan LagEvery = TimeSpan.FromSeconds(2);

    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly HttpIngestOptions _options;
    private readonly ILogger _log;
    private readonly HttpIngestSource _ingest;
    private readonly JetStreamLog _stream;
    private readonly Lock _pendingGate = new();
    private readonly Queue<(long Position, List<INatsJSMsg<ReadOnlyMemory<byte>>> Messages)> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private long _lag = -1;

    public ClusterHttpSource(IEngineServices services, string recipe, HttpIngestOptions options, ClusterOptions cluster)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Connectors.Nats");
        _stream = new JetStreamLog(cluster, recipe, options);
        _ingest = new HttpIngestSource(services, recipe, options, _stream);
        CheckpointScope = "worker:" + WorkerIdentity.Of(services.Data, Environment.GetEnvironmentVariable);
    }

    /// <summary>This worker's batch numbers are its own: its sinks' checkpoints are kept under its worker id, so workers on one shared store do not overwrite each other's.</summary>
    public string CheckpointScope { get; }

    public JetStreamLog Stream => _stream;

    /// <summary>Never in cluster mode: there is no end of input to reach (<c>run --once</c> refuses <c>--cluster</c>).</summary>
    public bool CaughtUp => false;

    public long MaxRequestBodyBytes => _ingest.MaxRequestBodyBytes;

    public bool Healthy => _ingest.Healthy;

    public string? Unhealthy => _ingest.Unhealthy;

    public void MapEndpoints(IEndpointRouteBuilder routes, ServingContext context) => _ingest.MapEndpoints(routes, context);

    /// <summary>
    /// The local landing log is not this pipeline's log in cluster mode, so the sinks' checkpoints (batch numbers) are
    /// not held against it.
    /// </summary>
    public void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks) { }

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        var consumer = await _stream.ConsumerAsync(ct).ConfigureAwait(false);
        NatsLog.Consuming(_log, _options.Stream, _stream.StreamName, JetStreamLog.ConsumerName);
        // Messages wait here between JetStream and the batch being gathered; bounded, and JetStream holds the rest.
        var inbox = Channel.CreateBounded<INatsJSMsg<ReadOnlyMemory<byte>>>(new BoundedChannelOptions(Math.Min(_options.BatchMaxEvents, 10_000)) { SingleReader = true, SingleWriter = true });
        var pump = PumpAsync(consumer, inbox.Writer, linked.Token);
        var lag = WatchLagAsync(consumer, linked.Token);
        var parser = _ingest.NewParser(4096);
        var position = resumeAfter ?? 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (!await inbox.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
                {
                    await pump.ConfigureAwait(false); // the pump ended: its failure is the pipeline's
                    yield break;
                }

                var lingerUntil = _services.Time.GetUtcNow() + _options.BatchLinger;
                var messages = new List<INatsJSMsg<ReadOnlyMemory<byte>>>();
                while (messages.Count < _options.BatchMaxEvents)
                {
                    if (inbox.Reader.TryRead(out var message))
                    {
                        messages.Add(message);
                        Flatten(parser, message);
                        continue;
                    }

                    var remaining = lingerUntil - _services.Time.GetUtcNow();
                    if (remaining <= TimeSpan.Zero || !await WaitForMoreAsync(inbox.Reader, remaining, ct).ConfigureAwait(false)) { break; }
                }

                position++;
                lock (_pendingGate) { _pending.Enqueue((position, messages)); }
                yield return new RecordBatch(_ingest.ByTable(parser.Flush().ToList()), position);
            }
        }
        finally
        {
            await linked.CancelAsync().ConfigureAwait(false);
            await Quietly(pump).ConfigureAwait(false);
            await Quietly(lag).ConfigureAwait(false);
        }
    }

    private void Flatten(EventParser parser, INatsJSMsg<ReadOnlyMemory<byte>> message)
    {
        var record = message.Data;
        var sequence = (long)(message.Metadata?.Sequence.Stream ?? 0);
        if (LandingRecord.TryRead(record.Span, out var size) != ReadStatus.Ok || size != record.Length)
        {
            // Nothing but Sluice publishes here; a message that is no landing record is kept, not dropped, and acknowledged with its batch.
            _services.DeadLetters.Add(_options.DeadLetterSource(_recipe), $"JetStream stream {_stream.StreamName}, sequence {sequence}",
                "not a landing record (published by something other than Sluice?)", StreamIngestor.Payload(record.Span), $"{_stream.StreamName}:{sequence}");
            return;
        }

        _ingest.Flatten(parser, LandingRecord.Decode(record, sequence, b => Encoding.UTF8.GetString(b.Span)));
    }

    /// <summary>How long the pump keeps consuming again while JetStream fails (a node lost, a leader being elected) before the pipeline fails.</summary>
    public static readonly TimeSpan OutageLimit = TimeSpan.FromMinutes(2);

    private async Task PumpAsync(INatsJSConsumer consumer, ChannelWriter<INatsJSMsg<ReadOnlyMemory<byte>>> inbox, CancellationToken ct)
    {
        var opts = new NatsJSConsumeOpts { MaxMsgs = 1000 };
        DateTimeOffset? failingSince = null;
        while (true)
        {
            try
            {
                await foreach (var message in consumer.ConsumeAsync<ReadOnlyMemory<byte>>(opts: opts, cancellationToken: ct).ConfigureAwait(false))
                {
                    failingSince = null;
                    await inbox.WriteAsync(message, ct).ConfigureAwait(false);
                }

                inbox.TryComplete();
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                inbox.TryComplete();
                return;
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
            {
                // A node of the cluster going away ends the consume (its pull requests die with it) while the
                // others elect a new leader for the stream: consume again. Unacknowledged messages come back after
                // the ack wait, so nothing is lost; only an outage longer than OutageLimit fails the pipeline.
                var now = _services.Time.GetUtcNow();
                failingSince ??= now;
                if (now - failingSince > OutageLimit)
                {
                    inbox.TryComplete(new Core.SluiceException($"JetStream stream {_stream.StreamName}: no node has served consumer '{JetStreamLog.ConsumerName}' for {OutageLimit.TotalMinutes:0} minutes: {e.Message}", e));
                    throw;
                }

                NatsLog.ConsumeInterrupted(_log, _stream.StreamName, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), _services.Time, ct).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                inbox.TryComplete(e);
                throw;
            }
        }
    }

    private async Task<bool> WaitForMoreAsync(ChannelReader<INatsJSMsg<ReadOnlyMemory<byte>>> reader, TimeSpan wait, CancellationToken ct)
    {
        try
        {
            return await reader.WaitToReadAsync(ct).AsTask().WaitAsync(wait, _services.Time, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>The consumer's lag (events not yet delivered plus delivered and not acknowledged, over every worker), for status.</summary>
    private async Task WatchLagAsync(INatsJSConsumer consumer, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await consumer.RefreshAsync(ct).ConfigureAwait(false);
                Volatile.Write(ref _lag, (long)consumer.Info.NumPending + consumer.Info.NumAckPending);
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
            {
                Volatile.Write(ref _lag, -1); // unknown while no node answers
            }

            await Task.Delay(LagEvery, _services.Time, ct).ConfigureAwait(false);
        }
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or NATS.Client.Core.NatsException or ChannelClosedException)
        {
            // Stopping: the reader already reported what mattered.
        }
    }

    /// <summary>Every sink committed up to <paramref name="position"/>: the messages of those batches are acknowledged, and JetStream deletes them.</summary>
    public async Task AcknowledgeAsync(long position, CancellationToken ct)
    {
        var done = new List<INatsJSMsg<ReadOnlyMemory<byte>>>();
        lock (_pendingGate)
        {
            while (_pending.TryPeek(out var batch) && batch.Position <= position)
            {
                done.AddRange(_pending.Dequeue().Messages);
            }
        }

        foreach (var message in done)
        {
            try
            {
                await message.AckAsync(cancellationToken: ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
            {
                // A lost acknowledgement (a node going away) means a redelivery, which the keyed sinks absorb.
                NatsLog.AckLost(_log, _stream.StreamName, e.Message);
            }
        }
    }

    public void AttachStatus(Core.Status.PipelineStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        status.Backlog = () => Volatile.Read(ref _lag) is var lag and >= 0 ? new Core.Status.Backlog(lag, "events in JetStream") : null;
    }

    public bool CanReplay(DeadLetter letter) => _ingest.CanReplay(letter);

    public Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct) => _ingest.ReplayAsync(letter, ct);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        await _ingest.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}

internal static partial class NatsLog
{
    [LoggerMessage(43000, LogLevel.Information, "Stream {Stream}: cluster mode, reading JetStream stream {JetStream} through durable consumer '{Consumer}'")]
    public static partial void Consuming(ILogger logger, string stream, string jetStream, string consumer);

    [LoggerMessage(43001, LogLevel.Warning, "JetStream stream {JetStream}: consuming was interrupted ({Reason}); consuming again (unacknowledged events are redelivered)")]
    public static partial void ConsumeInterrupted(ILogger logger, string jetStream, string reason);

    [LoggerMessage(43002, LogLevel.Warning, "JetStream stream {JetStream}: an acknowledgement was lost ({Reason}); its events will be redelivered and the keyed sinks absorb them")]
    public static partial void AckLost(ILogger logger, string jetStream, string reason);
}
