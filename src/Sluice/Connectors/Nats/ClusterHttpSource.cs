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
/// With the cluster's shared metadata store, each partition is read instead by the one worker holding its lease
/// (<see cref="PartitionOwner"/>), through a consumer of its own, so one key's events are written in their order; each
/// batch carries the leases it was read under (<see cref="BatchFence"/>) for the sinks to fence on.
/// </summary>
/// <remarks>
/// Positions are this worker's own batch numbers, counting on from its last checkpoint (kept under its worker id,
/// <see cref="CheckpointScope"/>): a redelivered message may be older than one this worker already committed, so the
/// stream sequence cannot be a position a sink skips below. A message holds one request's events of one partition
/// (<see cref="EventMessages"/>; one event, from older versions); rows carry <see cref="EventMessages.Offset"/> of the
/// message's stream sequence and the event's index in it as <c>_offset</c> (the same for every delivery of an event).
/// </remarks>
public sealed class ClusterHttpSource : IStreamSource, IHttpEndpoints, IDeadLetterReplayer, Core.Status.IStatusSource, ICheckpointScope
{
    private static readonly TimeSpan LagEvery = TimeSpan.FromSeconds(2);

    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly HttpIngestOptions _options;
    private readonly ILogger _log;
    private readonly HttpIngestSource? _ingest;
    private readonly JetStreamLog _stream;
    private readonly Lock _pendingGate = new();
    private readonly Queue<(long Position, List<Delivery> Messages, DateTimeOffset Since)> _pending = new();
    private readonly HashSet<ulong> _held = [];
    private readonly PartitionOwner? _owner;
    private readonly CancellationTokenSource _stop = new();
    private readonly IJetStreamRecords? _records;
    private readonly TimeSpan _ackWait;
    private long _lag = -1;

    public ClusterHttpSource(IEngineServices services, string recipe, HttpIngestOptions options, ClusterOptions cluster)
        : this(services, recipe, options, cluster, null)
    {
    }

    /// <param name="records">
    /// What the stream's messages are when they are not the http source's landing records (a CDC pipeline's changes,
    /// <see cref="CdcChangeLog"/>): such a pipeline serves no ingest endpoint and reads its messages with it.
    /// </param>
    internal ClusterHttpSource(IEngineServices services, string recipe, HttpIngestOptions options, ClusterOptions cluster, IJetStreamRecords? records)
    {
        _records = records;
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Connectors.Nats");
        _ackWait = cluster.AckWait;
        _stream = new JetStreamLog(cluster, recipe, options, services.Logging, services.Time);
        // A CDC pipeline's stream takes no requests: no ingest endpoint, so no landing folder of its own either.
        _ingest = records is null ? new HttpIngestSource(services, recipe, options, _stream) : null;
        if (services.Metadata.Shared is not null && cluster.KeyOrder)
        {
            var leases = new Cluster.PartitionLeases(services.Metadata, _stream.StreamName, $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}",
                cluster.Partitions, Cluster.PartitionLeases.DurationFrom(Environment.GetEnvironmentVariable), services.Time);
            _owner = new PartitionOwner(leases, _stream, services.Time, _log, HasPending) { Registry = services.Worker };
        }
        CheckpointScope = WorkerCheckpointScope.Of(WorkerIdentity.Of(services.Data, Environment.GetEnvironmentVariable));
    }

    /// <summary>The partitions' leases this worker takes and holds (null without the shared metadata store: one consumer shared by every worker).</summary>
    internal PartitionOwner? Owner => _owner;

    /// <summary>This worker's batch numbers are its own: its sinks' checkpoints are kept under its worker id, so workers on one shared store do not overwrite each other's.</summary>
    public string CheckpointScope { get; }

    /// <summary>Positions are this worker's batch numbers: a restart numbers on above every sink's checkpoint (see <see cref="ICheckpointScope.NumbersBatchesOnly"/>).</summary>
    public bool NumbersBatchesOnly => true;

    public JetStreamLog Stream => _stream;

    /// <summary>Never in cluster mode: there is no end of input to reach (<c>run --once</c> refuses <c>--cluster</c>).</summary>
    public bool CaughtUp => false;

    /// <summary>A CDC pipeline takes no requests: the server's default for the others (1 MiB).</summary>
    public long MaxRequestBodyBytes => _ingest?.MaxRequestBodyBytes ?? 1L << 20;

    public bool Healthy => _ingest?.Healthy ?? true;

    public string? Unhealthy => _ingest?.Unhealthy;

    public void MapEndpoints(IEndpointRouteBuilder routes, ServingContext context)
    {
        _ingest?.MapEndpoints(routes, context);
        if (_ingest is not null)
        {
            var pending = context.Metrics.Gauge("sluice_cluster_pending_messages", "Messages of the stream's JetStream log not yet processed, as this worker last read them (-1: unknown); past max_pending requests get 503.", "stream").WithLabels(_options.Stream);
            context.Metrics.BeforeScrape(() => pending.Set(_stream.Pending));
        }
    }

    /// <summary>
    /// The local landing log is not this pipeline's log in cluster mode, so the sinks' checkpoints (batch numbers) are
    /// not held against it.
    /// </summary>
    public void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks) { }

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        // Messages wait here between JetStream and the batch being gathered; bounded, and JetStream holds the rest. A
        // message is a request's events of one partition (up to about 1 MiB), so a thousand are plenty.
        var inbox = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(Math.Min(_options.BatchMaxEvents, 1_000)) { SingleReader = true, SingleWriter = _owner is null });
        Task pump, lag;
        if (_owner is null)
        {
            var consumer = await ThroughOutageAsync(() => _stream.ConsumerAsync(ct), ct).ConfigureAwait(false);
            NatsLog.Consuming(_log, _options.Stream, _stream.StreamName, _stream.ConsumerName);
            pump = PumpSharedAsync(consumer, async t => await _stream.ConsumerAsync(t).ConfigureAwait(false), inbox.Writer, linked.Token);
            lag = WatchLagAsync(consumer, linked.Token);
        }
        else
        {
            await ThroughOutageAsync(async () => { await _stream.EnsureAsync(ct).ConfigureAwait(false); return true; }, ct).ConfigureAwait(false);
            NatsLog.ConsumingPartitions(_log, _options.Stream, _stream.StreamName, _owner.Leases.Worker, _owner.Leases.Duration.TotalSeconds);
            pump = _owner.RunAsync((consumer, partition, token, t) => ConsumeAsync(consumer, c => _owner.RemakeAsync(partition, token, c), d => inbox.Writer.WriteAsync(new Delivery(d, partition, token), t), t), inbox.Writer, linked.Token);
            lag = WatchBacklogAsync(linked.Token);
        }

        var progress = KeepHeldAsync(linked.Token);
        var parser = _ingest?.NewParser(4096);
        var position = resumeAfter ?? 0;
        // What an earlier read held and never acknowledged comes again after the ack wait, and must be written then.
        lock (_pendingGate) { _held.Clear(); }
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
                var messages = new List<Delivery>();
                var events = 0;
                // Whole messages: a batch may go over batch.max_events by one message's events.
                while (events < _options.BatchMaxEvents)
                {
                    if (inbox.Reader.TryRead(out var message))
                    {
                        // A partition given up or lost since: its events are left unacknowledged, for its next owner.
                        if (_owner is not null && !_owner.Reading(message.Partition, message.Token)) { continue; }
                        messages.Add(message);
                        // An ack wait that ran out while this worker still holds the event brings it here again: it is
                        // acknowledged with its batch, and not written a second time (the lake sink appends).
                        if (!Hold(message)) { continue; }
                        events += Flatten(parser, message.Message);
                        continue;
                    }

                    var remaining = lingerUntil - _services.Time.GetUtcNow();
                    if (remaining <= TimeSpan.Zero || !await WaitForMoreAsync(inbox.Reader, remaining, ct).ConfigureAwait(false)) { break; }
                }

                position++;
                lock (_pendingGate) { _pending.Enqueue((position, messages, _services.Time.GetUtcNow())); }
                yield return new RecordBatch(_records?.Flush() ?? _ingest!.ByTable(parser!.Flush().ToList()), position)
                {
                    Fence = _owner is null || messages.Count == 0 ? null : Fence(messages),
                    Log = _records is null
                        ? EventMessages.Slots(_stream.Identity, messages.Select(m => (long)(m.Message.Metadata?.Sequence.Stream ?? 0)))
                        : LogSequences.Of(_stream.Identity, messages.Select(m => (long)(m.Message.Metadata?.Sequence.Stream ?? 0)).Where(s => s > 0)),
                    // Proved only with the partitions leased: their batches are fenced, so a paused worker cannot write a change late.
                    SettledBelow = _owner is null ? null : _records?.Settled?.Below,
                };
            }
        }
        finally
        {
            await linked.CancelAsync().ConfigureAwait(false);
            await Quietly(pump).ConfigureAwait(false);
            await Quietly(lag).ConfigureAwait(false);
            await Quietly(progress).ConfigureAwait(false);
        }
    }

    /// <summary>How many ack waits a batch's messages are kept from redelivery while its sinks commit it (<see cref="KeepHeldAsync"/>).</summary>
    public const int ProgressAckWaits = 4;

    /// <summary>
    /// Every third of the ack wait, tells JetStream that the messages of the batches still with the sinks are being
    /// worked on (in-progress), so that a commit slower than the ack wait (a loaded machine, a large lake commit) does
    /// not have them delivered again: each such redelivery came back to this worker (its partition's consumer) or to
    /// another that found them committed, work done for nothing, and under load most batches were sent twice. Bounded,
    /// <see cref="ProgressAckWaits"/> ack waits from when the batch was read: a worker whose sinks are stuck lets its
    /// events go to another after that, as the ack wait alone did. Only for partitions this worker still holds.
    /// </summary>
    private async Task KeepHeldAsync(CancellationToken ct)
    {
        var every = _ackWait / 3;
        var bound = _ackWait * ProgressAckWaits;
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(every, _services.Time, ct).ConfigureAwait(false);
            var now = _services.Time.GetUtcNow();
            List<Delivery> held;
            lock (_pendingGate)
            {
                held = _pending.Where(b => now - b.Since < bound).SelectMany(b => b.Messages).ToList();
            }

            foreach (var message in held)
            {
                if (_owner is not null && !_owner.Holds(message.Partition, message.Token)) { continue; }
                try
                {
                    await message.Message.AckProgressAsync(cancellationToken: ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
                {
                    // A node away: the message may be delivered again after the ack wait, which the sinks absorb.
                    break;
                }
            }
        }
    }

    /// <summary>Parses a message's events into <paramref name="parser"/>; returns how many it held.</summary>
    private int Flatten(EventParser? parser, INatsJSMsg<ReadOnlyMemory<byte>> message)
    {
        var data = message.Data;
        var sequence = (long)(message.Metadata?.Sequence.Stream ?? 0);
        if (_records?.Add(data, sequence) is { } added)
        {
            if (!added)
            {
                _services.DeadLetters.Add(_options.DeadLetterSource(_recipe), $"JetStream stream {_stream.StreamName}, sequence {sequence}",
                    "not a change message (published by something other than Sluice?)", StreamIngestor.Payload(data.Span), $"{_stream.StreamName}:{sequence}");
            }

            return 1;
        }

        // Landing records one after the other (one alone from older versions); the tenant is the request's, so decoded once.
        var at = 0;
        var index = 0;
        string? tenant = null;
        ReadOnlyMemory<byte> tenantBytes = default;
        Func<ReadOnlyMemory<byte>, string> tenantOf = b =>
        {
            if (tenant is null || !b.Span.SequenceEqual(tenantBytes.Span)) { (tenant, tenantBytes) = (Encoding.UTF8.GetString(b.Span), b); }
            return tenant;
        };
        while (at < data.Length || index == 0)
        {
            var rest = data[at..];
            if (index >= EventMessages.MaxEvents || LandingRecord.TryRead(rest.Span, out var size) != ReadStatus.Ok)
            {
                // Nothing but Sluice publishes here; what is no landing record is kept, not dropped, and acknowledged with its batch.
                _services.DeadLetters.Add(_options.DeadLetterSource(_recipe), $"JetStream stream {_stream.StreamName}, sequence {sequence}" + (index == 0 ? "" : $", after event {index}"),
                    "not a landing record (published by something other than Sluice?)", StreamIngestor.Payload(rest.Span), $"{_stream.StreamName}:{sequence}" + (index == 0 ? "" : $":{index}"));
                return Math.Max(index, 1);
            }

            _ingest!.Flatten(parser!, LandingRecord.Decode(rest[..size], EventMessages.Offset(sequence, index), tenantOf));
            at += size;
            index++;
        }

        return index;
    }

    /// <summary>How long the pump keeps consuming again while JetStream fails (a node lost, a leader being elected) before the pipeline fails.</summary>
    public static readonly TimeSpan OutageLimit = TimeSpan.FromMinutes(2);

    /// <summary>A consume that ran this long before it failed was served: its failure starts a new outage (a failing one ends at once or within the retry's second).</summary>
    private static readonly TimeSpan ConsumeRanAWhile = TimeSpan.FromSeconds(10);

    private async Task PumpSharedAsync(INatsJSConsumer consumer, Func<CancellationToken, Task<INatsJSConsumer?>> recreate, ChannelWriter<Delivery> inbox, CancellationToken ct)
    {
        try
        {
            await ConsumeAsync(consumer, recreate, m => inbox.WriteAsync(new Delivery(m, -1, 0), ct), ct).ConfigureAwait(false);
            inbox.TryComplete();
        }
        catch (Exception e)
        {
            inbox.TryComplete(e);
            throw;
        }
    }

    /// <summary>How often the shared consume asks JetStream whether its consumer still exists (a partition's reader: <see cref="PartitionOwner"/>'s watch, every lease).</summary>
    public static readonly TimeSpan ConsumerWatchEvery = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Hands a consumer's messages on until <paramref name="ct"/> is cancelled or the consume ends; consumes again while
    /// JetStream fails, and throws once it has failed for <see cref="OutageLimit"/>. A consumer deleted under it (by an
    /// operator, or JetStream) is no outage: it is made again at once with <paramref name="recreate"/> (null: the
    /// partition's lease is another's now, and this reader ends). A deleted consumer is told by asking JetStream
    /// (<see cref="JetStreamLog.LookAsync"/>) whenever the consume fails (with "409 Consumer Deleted" or anything else)
    /// and, for the shared consumer, every <see cref="ConsumerWatchEvery"/>: one deleted between two pull requests may
    /// end nothing at all, its consume waiting on pulls nobody answers.
    /// </summary>
    private async Task ConsumeAsync(INatsJSConsumer consumer, Func<CancellationToken, Task<INatsJSConsumer?>> recreate, Func<INatsJSMsg<ReadOnlyMemory<byte>>, ValueTask> deliver, CancellationToken ct)
    {
        // Per partition fewer: a worker may read many partitions, each consume buffering this many. Counted in messages,
        // not bytes: with a byte-bounded consume (MaxBytes) ClusterPartitionTests failed under load (a partition's last
        // events not delivered), not proven to be the cause. An http message is a request's events of one partition, usually a few KB, at
        // most about 1 MiB (EventMessages.MaxBytes).
        var opts = new NatsJSConsumeOpts { MaxMsgs = _owner is null ? 1000 : 200 };
        DateTimeOffset? failingSince = null;
        while (true)
        {
            var started = _services.Time.GetUtcNow();
            Exception? failure = null;
            using (var round = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                // The shared consumer has no lease owner watching it: this watch ends its consume when it is gone.
                var watch = _owner is null ? WatchConsumerAsync(consumer, round) : Task.CompletedTask;
                try
                {
                    await foreach (var message in consumer.ConsumeAsync<ReadOnlyMemory<byte>>(opts: opts, cancellationToken: round.Token).ConfigureAwait(false))
                    {
                        failingSince = null;
                        await deliver(message).ConfigureAwait(false);
                    }

                    // Ended by the watch (the consumer gone): made again below; otherwise the consume is over.
                    if (ct.IsCancellationRequested || !round.IsCancellationRequested) { return; }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (OperationCanceledException) when (round.IsCancellationRequested)
                {
                    // The watch found the consumer gone.
                }
                catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException or NatsJSProtocolException)
                {
                    failure = e;
                }
                finally
                {
                    await round.CancelAsync().ConfigureAwait(false);
                    await Quietly(watch).ConfigureAwait(false);
                }
            }

            try
            {
                if (failure is null || await JetStreamLog.LookAsync(consumer, ct).ConfigureAwait(false) == ConsumerLook.Gone)
                {
                    // Deleted (409 Consumer Deleted, or found gone). Its unacknowledged events are still in the stream (a
                    // work queue keeps what is not acknowledged), and the consumer made again starts at the oldest of
                    // them: what this worker holds comes back and is acknowledged with its batch, not written twice
                    // (Hold); what it already acknowledged is gone.
                    var name = consumer.Info.Name;
                    if (await ThroughOutageAsync(() => recreate(ct), ct).ConfigureAwait(false) is not { } made) { return; }
                    consumer = made;
                    NatsLog.ConsumerRecreated(_log, _stream.StreamName, name);
                    continue;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }

            // A node of the cluster going away ends the consume (its pull requests die with it) while the others
            // elect a new leader for the stream: consume again. Unacknowledged messages come back after the ack wait,
            // so nothing is lost; only an outage longer than OutageLimit fails the pipeline.
            var now = _services.Time.GetUtcNow();
            // An outage is consumes failing one after the other: one that ran a while first (on a partition that got
            // nothing meanwhile) starts a new count, not the continuation of one that ended long ago.
            if (failingSince is null || now - started > ConsumeRanAWhile) { failingSince = now; }
            if (now - failingSince > OutageLimit)
            {
                throw new Core.SluiceException($"JetStream stream {_stream.StreamName}: no node has served consumer '{consumer.Info.Name}' for {OutageLimit.TotalMinutes:0} minutes: {failure!.Message}", failure);
            }

            NatsLog.ConsumeInterrupted(_log, _stream.StreamName, failure!.Message);
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _services.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Every <see cref="ConsumerWatchEvery"/>, asks JetStream about the shared consumer; gone, it ends the consume (<paramref name="round"/>) for it to be made again.</summary>
    private async Task WatchConsumerAsync(INatsJSConsumer consumer, CancellationTokenSource round)
    {
        while (!round.IsCancellationRequested)
        {
            await Task.Delay(ConsumerWatchEvery, _services.Time, round.Token).ConfigureAwait(false);
            if (await JetStreamLog.LookAsync(consumer, round.Token).ConfigureAwait(false) == ConsumerLook.Gone)
            {
                await round.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    /// <summary>The leases the batch's events were read under, and the last sequence of each partition in it.</summary>
    private BatchFence Fence(List<Delivery> messages) =>
        new(messages.GroupBy(m => (m.Partition, m.Token))
            .Select(g => new PartitionMark(_stream.StreamName, g.Key.Partition, g.Key.Token, g.Max(m => (long)(m.Message.Metadata?.Sequence.Stream ?? 0))))
            .ToList());

    /// <summary>False when this worker already holds the message's event unacknowledged (a redelivery of it).</summary>
    private bool Hold(Delivery message)
    {
        if (message.Message.Metadata?.Sequence.Stream is not { } sequence) { return true; }
        lock (_pendingGate) { return _held.Add(sequence); }
    }

    /// <summary>Whether a batch waiting for its sinks holds events of <paramref name="partition"/> (a partition is given up only once none does).</summary>
    private bool HasPending(int partition)
    {
        lock (_pendingGate)
        {
            return _pending.Any(b => b.Messages.Any(m => m.Partition == partition));
        }
    }

    /// <summary>Partitioned: the events in the stream, not yet acknowledged by any worker (a work queue deletes what is acknowledged).</summary>
    private async Task WatchBacklogAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var state = await _stream.StateAsync(ct).ConfigureAwait(false);
            Volatile.Write(ref _lag, state?.Messages ?? -1);
            if (state is { } s) { _records?.Settled?.FirstUnacknowledged(s.First); }
            if (_ingest is not null) { _stream.NotePending(Volatile.Read(ref _lag)); }
            await Task.Delay(LagEvery, _services.Time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A JetStream API call at the start of reading (the stream and its consumer), tried again every second while no
    /// node answers it (a node lost, a leader being elected), as the consume itself is; it fails only after <see cref="OutageLimit"/>.
    /// </summary>
    private async Task<T> ThroughOutageAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        DateTimeOffset? failingSince = null;
        while (true)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (Exception e) when ((e is NATS.Client.Core.NatsException or TimeoutException) && !ct.IsCancellationRequested)
            {
                var now = _services.Time.GetUtcNow();
                failingSince ??= now;
                if (now - failingSince > OutageLimit)
                {
                    throw new Core.SluiceException($"JetStream stream {_stream.StreamName}: no node has answered for {OutageLimit.TotalMinutes:0} minutes: {e.Message}", e);
                }

                NatsLog.ConsumeInterrupted(_log, _stream.StreamName, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), _services.Time, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> WaitForMoreAsync(ChannelReader<Delivery> reader, TimeSpan wait, CancellationToken ct)
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
                if (_ingest is not null) { _stream.NotePending(Volatile.Read(ref _lag)); }
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
        var done = new List<Delivery>();
        lock (_pendingGate)
        {
            while (_pending.TryPeek(out var batch) && batch.Position <= position)
            {
                done.AddRange(_pending.Dequeue().Messages);
            }

            foreach (var message in done)
            {
                if (message.Message.Metadata?.Sequence.Stream is { } sequence) { _held.Remove(sequence); }
            }
        }

        foreach (var message in done)
        {
            // Events of a partition whose lease was lost stay unacknowledged: its consumer is its new owner's now.
            if (_owner is not null && !_owner.Holds(message.Partition, message.Token)) { continue; }
            try
            {
                await message.Message.AckAsync(cancellationToken: ct).ConfigureAwait(false);
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

    public bool CanReplay(DeadLetter letter) => _ingest?.CanReplay(letter) ?? false;

    public Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct) => _ingest?.ReplayAsync(letter, ct) ?? Task.FromResult<string?>("a CDC pipeline's change messages are not replayed from here");

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        // After the pipeline's last acknowledgement: what this worker held goes to the others at once.
        _owner?.Leave();
        await _stream.DisposeAsync().ConfigureAwait(false);
        if (_ingest is not null) { await _ingest.DisposeAsync().ConfigureAwait(false); }
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

    [LoggerMessage(43931, LogLevel.Warning, "JetStream stream {JetStream}: consumer '{Consumer}' was deleted while this worker read it; made again, reading on (its unacknowledged events are delivered again)")]
    public static partial void ConsumerRecreated(ILogger logger, string jetStream, string consumer);

    [LoggerMessage(43300, LogLevel.Information, "Stream {Stream}: cluster mode with partition leases, reading JetStream stream {JetStream} by the partitions worker {Worker} holds (leases of {LeaseSeconds} s in the shared metadata store)")]
    public static partial void ConsumingPartitions(ILogger logger, string stream, string jetStream, string worker, double leaseSeconds);
}

/// <summary>A message as this worker got it: from partition <paramref name="Partition"/>'s consumer under lease <paramref name="Token"/> (-1 and 0: the shared consumer).</summary>
internal readonly record struct Delivery(INatsJSMsg<ReadOnlyMemory<byte>> Message, int Partition, long Token);
