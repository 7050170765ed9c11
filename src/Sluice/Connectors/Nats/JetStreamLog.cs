using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;

namespace Sluice.Connectors.Nats;

/// <summary>
/// One HTTP stream's log in the cluster: a JetStream stream <c>SLUICE_&lt;cluster&gt;_&lt;recipe&gt;_&lt;stream&gt;</c> on
/// subjects <c>sluice.&lt;cluster&gt;.&lt;recipe&gt;.&lt;stream&gt;.&lt;partition&gt;</c> (the cluster's name,
/// <see cref="ClusterOptions.Name"/>, so two clusters running one recipe on the same NATS servers do not share a log),
/// file storage, replicated <see cref="ClusterOptions.Replicas"/>
/// times, work-queue retention (an event is deleted once acknowledged, that is once every sink committed it), bounded by
/// <c>max_backlog_bytes</c> (a full stream refuses new events: 503, nothing is dropped). A request's events are
/// published as one message per partition (<see cref="EventMessages"/>), with an id made of their key hashes as
/// <c>Nats-Msg-Id</c>, so a retry of the request within the dedup window is stored once whichever worker takes it.
/// Workers read through one durable pull consumer, <see cref="ConsumerName"/>, acknowledging explicitly; or, with the
/// shared metadata store, each partition through a consumer of its own that only its lease's owner reads
/// (<see cref="PartitionConsumerAsync"/>).
/// </summary>
public sealed class JetStreamLog : IEventPublisher, IAsyncDisposable
{
    /// <summary>The start of every stream's description: a stream named before cluster names were part of the names has none (<see cref="RefuseUndrainedLegacyAsync"/>).</summary>
    private const string DescriptionPrefix = "sluice cluster ";

    /// <summary>
    /// How long a request waits for JetStream to store its events: a publish caught in a reconnection or a leader
    /// election is given up (503, the client sends it again), so no request hangs on a node that went away.
    /// </summary>
    public static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(10);

    private readonly ClusterOptions _cluster;
    private readonly HttpIngestOptions _options;
    private readonly NatsConnection _connection;
    private readonly INatsJSContext _js;
    private readonly string _subjectPrefix;
    private readonly string _recipe;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _setupGate = new(1, 1);
    private bool _ready;
    private long _pending = -1;
    /// <summary>When <see cref="_pending"/> was noted: a timestamp of <see cref="_time"/>.</summary>
    private long _pendingAt;

    /// <param name="logging">The host's loggers, for the NATS client's own messages (a server refusing something, a reconnection); none: they are dropped.</param>
    /// <param name="time">The host's clock, for the age of the pending figure (<see cref="Backlogged"/>); none: the system's.</param>
    public JetStreamLog(ClusterOptions cluster, string recipe, HttpIngestOptions options, ILoggerFactory? logging = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        _cluster = cluster;
        _options = options;
        _recipe = recipe;
        _time = time ?? TimeProvider.System;
        _log = (logging ?? NullLoggerFactory.Instance).CreateLogger("Sluice.Connectors.Nats");
        StreamName = $"SLUICE_{Name(cluster.Name)}_{Name(recipe)}_{Name(options.Stream)}";
        LegacyStreamName = $"SLUICE_{Name(recipe)}_{Name(options.Stream)}";
        _subjectPrefix = $"sluice.{Name(cluster.Name)}.{Name(recipe)}.{Name(options.Stream)}";
        ConsumerName = $"{Name(cluster.Name)}_workers";
        _connection = new NatsConnection(new NatsOpts
        {
            LoggerFactory = logging ?? NullLoggerFactory.Instance,
            Url = string.Join(',', cluster.NatsUrls),
            Name = $"sluice {recipe}/{options.Stream} pid {Environment.ProcessId}",
            // A node going away is expected: the client connects (at start too) and reconnects to another, forever,
            // while the host runs; what it cannot store meanwhile is refused with 503 once the request times out.
            RetryOnInitialConnect = true,
            MaxReconnectRetry = -1,
        });
        _js = _connection.CreateJetStreamContext();
    }

    public string StreamName { get; }

    /// <summary>The stream's name before the cluster's name was part of it (<c>SLUICE_&lt;recipe&gt;_&lt;stream&gt;</c>): checked at start for events left in it.</summary>
    public string LegacyStreamName { get; }

    /// <summary>The durable consumer every worker of the cluster shares (without partition ownership).</summary>
    public string ConsumerName { get; }

    /// <summary>The stream's name and creation time, once <see cref="EnsureAsync"/> ran: a stream deleted and created again starts its sequences over, and is another log.</summary>
    public string Identity { get; private set; } = "";

    /// <summary>A stream or subject token: letters, digits, '-' and '_' only (JetStream forbids '.', '*', '>' and spaces there).</summary>
    internal static string Name(string text) => string.Concat((text ?? "").Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    /// <summary>
    /// The subject of an event: its partition from its key hash (tenant and key), else from its tenant, so that one
    /// key's events are always in one partition, in the order they were published.
    /// </summary>
    public string Subject(ulong keyHash, string tenant) => SubjectOf(PartitionOf(keyHash, tenant));

    /// <summary>The partition of an event (<see cref="Subject"/>).</summary>
    public int PartitionOf(ulong keyHash, string tenant)
    {
        var hash = keyHash != 0 ? keyHash : System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(tenant));
        return (int)(hash % (ulong)_cluster.Partitions);
    }

    /// <summary>Creates the stream, or brings its settings up to date (every worker does; the last settings win).</summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _ready)) { return; }
        await _setupGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_ready) { return; }
            await RefuseUndrainedLegacyAsync(ct).ConfigureAwait(false);
            var stream = await _js.CreateOrUpdateStreamAsync(new StreamConfig(StreamName, [_subjectPrefix + ".*"])
            {
                Description = $"{DescriptionPrefix}{_cluster.Name}, recipe {_recipe}, stream {_options.Stream}",
                NumReplicas = _cluster.Replicas,
                Storage = StreamConfigStorage.File,
                Retention = StreamConfigRetention.Workqueue,
                Discard = StreamConfigDiscard.New,
                MaxBytes = _options.MaxBacklogBytes,
                DuplicateWindow = _options.DedupWindow,
            }, ct).ConfigureAwait(false);
            Identity = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{StreamName}@{stream.Info.Created.UtcTicks}");
            _ready = true;
        }
        finally
        {
            _setupGate.Release();
        }
    }

    /// <summary>
    /// Upgrading from a version whose streams were named without the cluster's name: a stream of the old name that
    /// still holds events (accepted with 2xx, or changes confirmed in the slot, never processed) would be abandoned
    /// silently by reading the new one, so the worker refuses to start, naming the stream and the ways out. An empty one
    /// is left alone (an older worker still running may publish to it): logged once. A stream of that name that this
    /// version created (another cluster's, whose name and recipe happen to spell it) has a description, and is not one.
    /// </summary>
    private async Task RefuseUndrainedLegacyAsync(CancellationToken ct)
    {
        INatsJSStream legacy;
        try
        {
            legacy = await _js.GetStreamAsync(LegacyStreamName, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return;
        }

        if (legacy.Info.Config.Description?.StartsWith(DescriptionPrefix, StringComparison.Ordinal) == true) { return; }
        var pending = legacy.Info.State.Messages;
        if (pending == 0)
        {
            NatsLog.LegacyStreamEmpty(_log, LegacyStreamName, StreamName);
            return;
        }

        throw new Core.FatalException(
            $"JetStream stream {LegacyStreamName} (named before cluster names were part of stream names) holds {pending} event(s) no worker has processed; " +
            $"this version reads {StreamName} instead and would leave them there. Drain it first: run the previous version's workers until its backlog is 0 " +
            $"(sluice status --cluster), then start these; or, to abandon them, delete it (nats stream rm {LegacyStreamName}). docs/SCALING.md, \"Upgrading to cluster-named streams\"");
    }

    /// <summary>The consumer every worker shares (without partition ownership), created or brought up to date.</summary>
    public async Task<INatsJSConsumer> ConsumerAsync(CancellationToken ct)
    {
        await EnsureAsync(ct).ConfigureAwait(false);
        return await _js.CreateOrUpdateConsumerAsync(StreamName, new ConsumerConfig(ConsumerName)
        {
            DurableName = ConsumerName,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _cluster.AckWait,
            MaxAckPending = _cluster.MaxAckPending,
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// What JetStream says of a consumer now: there (its <c>Info</c> refreshed), gone (404: deleted by an operator, or
    /// lost on a node), or no answer (no node answers). The one look both the shared consume and a partition's reader
    /// take to tell a deleted consumer (<see cref="ClusterHttpSource"/>, <see cref="PartitionOwner"/>).
    /// </summary>
    internal static async Task<ConsumerLook> LookAsync(INatsJSConsumer consumer, CancellationToken ct)
    {
        try
        {
            await consumer.RefreshAsync(ct).ConfigureAwait(false);
            return ConsumerLook.There;
        }
        catch (NatsJSApiException e) when (e.Error.Code == 404)
        {
            return ConsumerLook.Gone;
        }
        catch (Exception e) when (e is NatsException or TimeoutException)
        {
            return ConsumerLook.NoAnswer;
        }
    }

    /// <summary>Messages one partition's consumer may hold unacknowledged: more waits in JetStream.</summary>
    public const int PartitionMaxAckPending = 10_000;

    /// <summary>
    /// The start of the names of a partition's consumers under a lease: the cluster's name, the partition and the token,
    /// so a consumer of an older lease is never taken for it. Each consumer made adds <c>-</c> and a random part of its
    /// own (<see cref="PartitionConsumerAsync"/>).
    /// </summary>
    public string PartitionConsumerName(int partition, long token) => $"{PartitionConsumerPrefix(partition)}{token}";

    private string PartitionConsumerPrefix(int partition) => $"{Name(_cluster.Name)}_p{partition}-t";

    /// <summary>
    /// The durable consumer of one partition for the owner of its lease <paramref name="token"/>: the one made for the
    /// lease already, or a fresh one. Every other consumer of the partition (an older lease's) and the shared consumer
    /// are deleted first: a work-queue stream takes one consumer per subject, and the new one starts at the partition's
    /// oldest unacknowledged event, so the new owner reads the partition in its order, what its last owner left
    /// unacknowledged first. A consumer of an older lease, deleted, can neither deliver nor acknowledge anything any more.
    /// Null when a newer lease's consumer exists (the lease was lost meanwhile).
    /// <para>
    /// A consumer's name is never made twice: each one made gets a random part of its own after the token. NATS 2.9 (the
    /// test servers run 2.9.10) does not survive a name made again: a node that was down while a consumer was deleted and
    /// made again under its name, and that catches up from the others' snapshot, keeps the first one's Raft group, which
    /// no other node runs, so its <c>/healthz</c> says "consumer ... is not current" for good (nats-server#6507, fixed in
    /// 2.10.26 and 2.11.0). A name was made again when a make failed or timed out (a node killed meanwhile) and was tried again, and
    /// when a reader remade its deleted consumer.
    /// </para>
    /// </summary>
    public async Task<INatsJSConsumer?> PartitionConsumerAsync(int partition, long token, CancellationToken ct)
    {
        await EnsureAsync(ct).ConfigureAwait(false);
        var prefix = PartitionConsumerPrefix(partition);
        var older = new List<string>();
        string? own = null;
        await foreach (var existing in _js.ListConsumerNamesAsync(StreamName, ct).ConfigureAwait(false))
        {
            if (TokenOf(existing, prefix) is { } other)
            {
                // A newer lease's consumer: this worker lost the lease since it took it, and must not touch the new owner's.
                if (other > token) { return null; }
                if (other < token) { older.Add(existing); }
                else { own = existing; }
            }
            else if (existing == ConsumerName)
            {
                older.Add(existing);
            }
        }

        foreach (var existing in older)
        {
            try
            {
                await _js.DeleteConsumerAsync(StreamName, existing, ct).ConfigureAwait(false);
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404)
            {
                // Deleted meanwhile by another worker that found it older than its own lease.
            }
        }

        if (own is not null)
        {
            try
            {
                return await _js.GetConsumerAsync(StreamName, own, ct).ConfigureAwait(false);
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404)
            {
                // Deleted since the listing: a fresh one below.
            }
        }

        // Should a newer owner create its consumer between the listing and here, JetStream refuses this one (a work-queue
        // stream takes one consumer per subject), and the next renewal tells this worker it lost the lease.
        var name = $"{PartitionConsumerName(partition, token)}-{Guid.NewGuid().ToString("N")[..8]}";
        return await _js.CreateOrUpdateConsumerAsync(StreamName, new ConsumerConfig(name)
        {
            DurableName = name,
            FilterSubject = SubjectOf(partition),
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _cluster.AckWait,
            MaxAckPending = PartitionMaxAckPending,
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
            // Its state in memory, replicated by its Raft group like a file one's, but with nothing on a node's disk. NATS
            // 2.9.10 (which has no check for orphans; 2.9.15 added one) starts every consumer it finds on its disk again: a
            // node killed before it applied a consumer's deletion brought it back as a consumer nobody knows, which no API
            // can delete and which made the node refuse every later consumer of that partition as not unique, so the
            // partition got no consumer again. What the state holds is safe to lose: the stream is a work queue (an
            // acknowledged event is gone from it), so a consumer that forgot its state starts again at the oldest
            // unacknowledged event, as a new lease's does.
            MemStorage = true,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>The lease token in a partition consumer's name (<c>&lt;prefix&gt;&lt;token&gt;</c>, then <c>-&lt;random&gt;</c> or, made by an earlier version, nothing); null for another name.</summary>
    internal static long? TokenOf(string consumer, string prefix)
    {
        if (!consumer.StartsWith(prefix, StringComparison.Ordinal)) { return null; }
        var rest = consumer.AsSpan(prefix.Length);
        var dash = rest.IndexOf('-');
        return long.TryParse(dash < 0 ? rest : rest[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var token) ? token : null;
    }

    /// <summary>The subject of partition <paramref name="partition"/>.</summary>
    public string SubjectOf(int partition) => $"{_subjectPrefix}.{partition}";

    /// <summary>The partition of a subject of this stream (its last token), or -1.</summary>
    public static int PartitionOf(string subject) =>
        int.TryParse(subject.AsSpan(subject.LastIndexOf('.') + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : -1;

    /// <summary>A figure of <see cref="NotePending"/> older than this is not trusted (the worker's reader stopped): requests are taken, bounded by the stream's bytes alone.</summary>
    private static readonly TimeSpan PendingStale = TimeSpan.FromSeconds(10);

    /// <summary>Messages the stream holds not yet acknowledged, as last noted (-1: unknown).</summary>
    public long Pending => Volatile.Read(ref _pending);

    /// <summary>
    /// The stream's messages not yet acknowledged, as the worker's reader reads them every few seconds for its lag
    /// (the shared consumer's pending and ack pending, or the stream's messages; -1: no node answered). Past
    /// <see cref="ClusterOptions.MaxPending"/> new requests are refused (<see cref="Backlogged"/>): logged when it
    /// starts and when it ends.
    /// </summary>
    public void NotePending(long pending)
    {
        var before = Interlocked.Exchange(ref _pending, pending);
        Volatile.Write(ref _pendingAt, _time.GetTimestamp());
        var max = _cluster.MaxPending;
        if (pending > max && before <= max) { NatsLog.Refusing(_log, StreamName, pending, max); }
        else if (pending >= 0 && pending <= max && before > max) { NatsLog.Accepting(_log, StreamName, pending, max); }
    }

    public string? Backlogged
    {
        get
        {
            var pending = Volatile.Read(ref _pending);
            if (pending <= _cluster.MaxPending || _time.GetElapsedTime(Volatile.Read(ref _pendingAt)) > PendingStale) { return null; }
            return $"the cluster's log (JetStream stream {StreamName}) holds {pending:N0} messages the workers have not processed yet (max_pending {_cluster.MaxPending:N0}); retry later";
        }
    }

    /// <summary>Events in the stream (not yet acknowledged by every sink: the stream is a work queue), or null while no node answers.</summary>
    public async Task<long?> BacklogAsync(CancellationToken ct) => (await StateAsync(ct).ConfigureAwait(false))?.Messages;

    /// <summary>
    /// The messages in the stream and its first sequence: as a work queue the stream holds only messages not yet
    /// acknowledged, so every message before the first was acknowledged (an empty stream's first is the next to be
    /// stored). Null while no node answers.
    /// </summary>
    public async Task<(long Messages, long First)?> StateAsync(CancellationToken ct)
    {
        try
        {
            var stream = await _js.GetStreamAsync(StreamName, cancellationToken: ct).ConfigureAwait(false);
            return ((long)stream.Info.State.Messages, (long)stream.Info.State.FirstSeq);
        }
        catch (Exception e) when (e is NatsException or TimeoutException)
        {
            return null;
        }
    }

    public async Task<int> PublishAsync(IReadOnlyList<PublishedEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(PublishTimeout);
        try
        {
            await EnsureAsync(bounded.Token).ConfigureAwait(false);
            // One message per partition (EventMessages), all at once: JetStream pipelines them on the connection and
            // acknowledges each when a majority of the stream's replicas stored it.
            var messages = EventMessages.Of(events, e => PartitionOf(e.KeyHash, e.Tenant), EventMessages.MaxBytes(_connection.ServerInfo?.MaxPayload), out var duplicates);
            var acks = new Task<PubAckResponse>[messages.Count];
            for (var i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                acks[i] = _js.PublishAsync(SubjectOf(m.Partition), m.Data, opts: new NatsJSPubOpts { MsgId = m.MsgId }, cancellationToken: bounded.Token).AsTask();
            }

            await Task.WhenAll(acks).ConfigureAwait(false);
            for (var i = 0; i < acks.Length; i++)
            {
                // A duplicate is stored already (a retry of a request that was refused after part of it was stored):
                // success for this request. EnsureSuccess would throw for it.
                if (Stored(acks[i].Result)) { duplicates += messages[i].Events; }
                else { acks[i].Result.EnsureSuccess(); }
            }

            return duplicates;
        }
        catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new EventsNotStoredException($"the cluster's log (JetStream stream {StreamName}) did not confirm it stored the events: {e.Message}; nothing is acknowledged, send them again", e);
        }
    }

    /// <summary>
    /// Publishes messages on the partitions and with the <c>Nats-Msg-Id</c>s the caller chose (a CDC pipeline's changes,
    /// <see cref="CdcChangeLog"/>); returns once JetStream stored every one (one it had already counts), else throws
    /// <see cref="EventsNotStoredException"/>.
    /// </summary>
    internal async Task PublishAsync(IReadOnlyList<(int Partition, string? MsgId, byte[] Data)> messages, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(PublishTimeout);
        try
        {
            await EnsureAsync(bounded.Token).ConfigureAwait(false);
            var acks = new Task<PubAckResponse>[messages.Count];
            for (var i = 0; i < messages.Count; i++)
            {
                var (partition, id, data) = messages[i];
                acks[i] = _js.PublishAsync(SubjectOf(partition), data, opts: new NatsJSPubOpts { MsgId = id }, cancellationToken: bounded.Token).AsTask();
            }

            await Task.WhenAll(acks).ConfigureAwait(false);
            foreach (var ack in acks)
            {
                if (!Stored(ack.Result)) { ack.Result.EnsureSuccess(); }
            }
        }
        catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new EventsNotStoredException($"JetStream stream {StreamName} did not confirm it stored the changes: {e.Message}", e);
        }
    }

    /// <summary>
    /// Whether an answer is a duplicate of a message JetStream has stored: a success for the retry. A duplicate answered
    /// with sequence 0 is one whose first copy the stream's leader is still replicating (the test servers' NATS 2.9 answer
    /// so, nats-server#5827; sequence 0 means "not stored"): that copy may yet be lost with its leader (a node killed), so nothing is confirmed
    /// and the request is refused (503) for the client to send again; a retry once the first copy is stored is
    /// answered with its sequence. Taken for stored, it was a 202 for events that may be stored nowhere.
    /// </summary>
    internal static bool Stored(PubAckResponse ack)
    {
        ArgumentNullException.ThrowIfNull(ack);
        if (!ack.Duplicate) { return false; }
        if (ack.Seq == 0) { throw new EventsNotStoredException($"JetStream stream {ack.Stream} answered a duplicate that is not stored yet (its first copy still being replicated); nothing is acknowledged, send it again"); }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        _setupGate.Dispose();
    }
}

/// <summary>What <see cref="JetStreamLog.LookAsync"/> found.</summary>
internal enum ConsumerLook
{
    There,
    Gone,
    NoAnswer,
}

internal static partial class NatsLog
{
    [LoggerMessage(43930, LogLevel.Information, "JetStream stream {Legacy} (named before cluster names were part of stream names) is empty: this worker reads {JetStream}; delete {Legacy} once no worker of an older version runs")]
    public static partial void LegacyStreamEmpty(ILogger logger, string legacy, string jetStream);

    [LoggerMessage(43980, LogLevel.Warning, "JetStream stream {JetStream}: {Pending} messages not yet processed, over max_pending {MaxPending}: new requests get 503 with Retry-After until the workers catch up")]
    public static partial void Refusing(ILogger logger, string jetStream, long pending, int maxPending);

    [LoggerMessage(43981, LogLevel.Information, "JetStream stream {JetStream}: {Pending} messages not yet processed, within max_pending {MaxPending}: taking requests again")]
    public static partial void Accepting(ILogger logger, string jetStream, long pending, int maxPending);
}
