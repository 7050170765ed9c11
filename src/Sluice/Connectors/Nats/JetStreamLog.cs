using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;

namespace Sluice.Connectors.Nats;

/// <summary>
/// One HTTP stream's log in the cluster: a JetStream stream <c>SLUICE_&lt;recipe&gt;_&lt;stream&gt;</c> on subjects
/// <c>sluice.&lt;recipe&gt;.&lt;stream&gt;.&lt;partition&gt;</c>, file storage, replicated <see cref="ClusterOptions.Replicas"/>
/// times, work-queue retention (an event is deleted once acknowledged, that is once every sink committed it), bounded by
/// <c>max_backlog_bytes</c> (a full stream refuses new events: 503, nothing is dropped). Events are published with
/// their key hash as <c>Nats-Msg-Id</c>, so a retry within the dedup window is stored once whichever worker takes it.
/// Workers read through one durable pull consumer, <see cref="ConsumerName"/>, acknowledging explicitly.
/// </summary>
public sealed class JetStreamLog : IEventPublisher, IAsyncDisposable
{
    public const string ConsumerName = "workers";

    /// <summary>Events a worker (all workers together) may hold unacknowledged: more waits in JetStream.</summary>
    public const int MaxAckPending = 50_000;

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
    private readonly SemaphoreSlim _setupGate = new(1, 1);
    private bool _ready;

    public JetStreamLog(ClusterOptions cluster, string recipe, HttpIngestOptions options)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        ArgumentNullException.ThrowIfNull(options);
        _cluster = cluster;
        _options = options;
        StreamName = $"SLUICE_{Name(recipe)}_{Name(options.Stream)}";
        _subjectPrefix = $"sluice.{Name(recipe)}.{Name(options.Stream)}";
        _connection = new NatsConnection(new NatsOpts
        {
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

    /// <summary>A stream or subject token: letters, digits, '-' and '_' only (JetStream forbids '.', '*', '>' and spaces there).</summary>
    internal static string Name(string text) => string.Concat((text ?? "").Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    /// <summary>
    /// The subject of an event: its partition from its key hash (tenant and key), else from its tenant, so that one
    /// key's events are always in one partition, in the order they were published.
    /// </summary>
    public string Subject(ulong keyHash, string tenant)
    {
        var hash = keyHash != 0 ? keyHash : System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(tenant));
        return $"{_subjectPrefix}.{hash % (ulong)_cluster.Partitions}";
    }

    /// <summary>Creates the stream and the consumer, or brings their settings up to date (every worker does; the last settings win).</summary>
    public async Task EnsureAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _ready)) { return; }
        await _setupGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_ready) { return; }
            await _js.CreateOrUpdateStreamAsync(new StreamConfig(StreamName, [_subjectPrefix + ".*"])
            {
                NumReplicas = _cluster.Replicas,
                Storage = StreamConfigStorage.File,
                Retention = StreamConfigRetention.Workqueue,
                Discard = StreamConfigDiscard.New,
                MaxBytes = _options.MaxBacklogBytes,
                DuplicateWindow = _options.DedupWindow,
            }, ct).ConfigureAwait(false);
            await _js.CreateOrUpdateConsumerAsync(StreamName, new ConsumerConfig(ConsumerName)
            {
                DurableName = ConsumerName,
                AckPolicy = ConsumerConfigAckPolicy.Explicit,
                AckWait = _cluster.AckWait,
                MaxAckPending = MaxAckPending,
                DeliverPolicy = ConsumerConfigDeliverPolicy.All,
            }, ct).ConfigureAwait(false);
            _ready = true;
        }
        finally
        {
            _setupGate.Release();
        }
    }

    public async Task<INatsJSConsumer> ConsumerAsync(CancellationToken ct)
    {
        await EnsureAsync(ct).ConfigureAwait(false);
        return await _js.GetConsumerAsync(StreamName, ConsumerName, ct).ConfigureAwait(false);
    }

    public async Task<int> PublishAsync(IReadOnlyList<PublishedEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(PublishTimeout);
        try
        {
            await EnsureAsync(bounded.Token).ConfigureAwait(false);
            // All at once: JetStream pipelines them on the connection and acknowledges each when a majority of the
            // stream's replicas stored it.
            var acks = new Task<PubAckResponse>[events.Count];
            for (var i = 0; i < events.Count; i++)
            {
                var e = events[i];
                var opts = new NatsJSPubOpts { MsgId = e.KeyHash == 0 ? null : e.KeyHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture) };
                acks[i] = _js.PublishAsync(Subject(e.KeyHash, e.Tenant), e.Record, opts: opts, cancellationToken: bounded.Token).AsTask();
            }

            await Task.WhenAll(acks).ConfigureAwait(false);
            var duplicates = 0;
            foreach (var ack in acks)
            {
                // A duplicate is stored already (a retry of a request that was refused after part of it was stored):
                // success for this request. EnsureSuccess would throw for it.
                if (ack.Result.Duplicate) { duplicates++; }
                else { ack.Result.EnsureSuccess(); }
            }

            return duplicates;
        }
        catch (Exception e) when (e is NatsException or TimeoutException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new EventsNotStoredException($"the cluster's log (JetStream stream {StreamName}) did not confirm it stored the events: {e.Message}; nothing is acknowledged, send them again", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        _setupGate.Dispose();
    }
}
