using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Serving;
using Sluice.Serving.Observability;
using Sluice.Serving.Query;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>The <c>http</c> source type: a stream of events pushed over HTTP, landed durably, read by the pipeline by offset.</summary>
public sealed class HttpIngestSourceType : ISourceType
{
    public string Name => "http";

    public ISourceFactory Parse(ConfigMap options, RecipeContext recipe) => new HttpIngestSourceFactory(recipe.Name, HttpIngestOptions.Parse(options, recipe));
}

public sealed class HttpIngestSourceFactory(string recipe, HttpIngestOptions options) : IStreamSourceFactory, IEventEndFinder, IKnownBatchTables
{
    /// <summary>The stream's tables as its schemas declare them (the main table and each child array's).</summary>
    public IReadOnlyList<Core.Schema.TableSchema> BatchTables => new StreamShape(options).Tables.ToList();

    public HttpIngestOptions Options => options;

    public long? EventEnd(Core.DataDirectory data, long eventPosition) =>
        LandingLog.RecordEnd(Path.Combine(data?.Root ?? throw new ArgumentNullException(nameof(data)), "landing", options.Stream), eventPosition);

    public IRunnableSource Create(IEngineServices services) =>
        throw new InvalidOperationException("the http source runs inside a pipeline with sinks");

    public IStreamSource CreateStream(IEngineServices services) =>
        services?.Cluster is { } cluster ? new Nats.ClusterHttpSource(services, recipe, options, cluster) : new HttpIngestSource(services!, recipe, options);
}

/// <summary>
/// One HTTP stream: the landing log under <c>&lt;data&gt;/landing/&lt;stream&gt;/</c>, the ingest endpoint that appends to
/// it, and the stream source the pipeline reads it through. A batch gathers what landed during <c>batch_linger</c> (at
/// most <c>batch_max_events</c>), flattened into the stream's tables; its position is the log offset after its last
/// event, and every row carries its own event's offset (<c>_offset</c>), so a sink can tell exactly what it already has.
/// </summary>
public sealed class HttpIngestSource : IStreamSource, IHttpEndpoints, IDeadLetterReplayer, Core.Status.IStatusSource
{
    private const int ReadBufferBytes = 4 << 20;

    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly HttpIngestOptions _options;
    private readonly ILogger _log;
    private readonly DedupIndex _dedup;
    private readonly PiiHasher _pii;
    private readonly Lock _retireGate = new();
    private IReadOnlyList<(string Sink, string CheckpointKey)> _sinks = [];
    private long _target;
    private long _position;
    private long _fromHandoff;
    private long _fromLog;
    private IngestEndpoint? _endpoint;

    /// <param name="publisher">Cluster mode: accepted events go there instead of this process's landing log (<see cref="Nats.ClusterHttpSource"/>).</param>
    public HttpIngestSource(IEngineServices services, string recipe, HttpIngestOptions options, IEventPublisher? publisher = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.HttpIngest");
        Shape = new StreamShape(options);
        _pii = PiiHasher.ForDataFolder(services.Data);
        var folder = Path.Combine(services.Data.Root, "landing", options.Stream);
        Log = LandingLog.Open(folder, options.SegmentBytes, options.QueueBytes, _log);
        _dedup = new DedupIndex(Path.Combine(folder, "dedup"), options.DedupWindow, options.DedupMaxKeys);
        var now = services.Time.GetUtcNow().ToUnixTimeMilliseconds();
        if (options.DedupKey is not null)
        {
            _dedup.Load(now);
            foreach (var segment in Log.Segments)
            {
                foreach (var (hash, ms) in ScanKeys(SegmentFile(segment))) { _dedup.Add(hash, ms); }
            }

            _dedup.Expire(now);
        }

        Log.SegmentRetiring = Retire;
        Handoff = new IngestHandoff(HandoffBytes);
        Ingestor = new StreamIngestor(options, Shape, Log, _dedup, services.DeadLetters, services.Metadata, services.Time, recipe, publisher is null ? Handoff : null, _pii, publisher);
    }

    /// <summary>
    /// Landed bytes whose rows ingest hands to the pipeline in memory (<see cref="IngestHandoff"/>). The pipeline takes
    /// them as they become durable, so this fills only while the sinks hold it up; past it requests are read back from
    /// the log, as after a restart.
    /// </summary>
    public const long HandoffBytes = 32L << 20;

    public IngestHandoff Handoff { get; }

    /// <summary>Events the pipeline took as rows ingest had flattened (<see cref="Handoff"/>).</summary>
    public long EventsFromMemory => Interlocked.Read(ref _fromHandoff);

    /// <summary>Events the pipeline parsed again from the landing log: after a restart, or what was not handed off.</summary>
    public long EventsFromLog => Interlocked.Read(ref _fromLog);

    public StreamShape Shape { get; }

    public LandingLog Log { get; }

    public StreamIngestor Ingestor { get; }

    public HttpIngestOptions Options => _options;

    public long MaxRequestBodyBytes => _options.MaxRequestBytes;

    public bool Healthy => Unhealthy is null;

    public string? Unhealthy => Log.Damage?.Message ?? (Log.Failed ? $"landing log '{Log.Folder}': a write or fsync failed; ingest is refused until a restart" : null);

    public bool CaughtUp => Volatile.Read(ref _position) >= Volatile.Read(ref _target);

    public void MapEndpoints(IEndpointRouteBuilder routes, ServingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        _endpoint = new IngestEndpoint(_options, Ingestor, context);
        _endpoint.Map(routes);
        if (_options.Metrics is { } metrics)
        {
            new MetricsEndpoint(metrics, context).Map(routes);
        }

        RegisterGauges(context.Metrics);
    }

    /// <summary>Called before the server starts: a sink that committed past the log's end makes it damaged before any request is answered.</summary>
    public void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks)
    {
        _sinks = sinks;
        var checkpoints = new CheckpointStore(_services.Metadata, _services.Time);
        var committed = sinks.Select(s => (s.Sink, Value: checkpoints.Get(s.CheckpointKey))).Where(s => s.Value is not null)
            .Select(s => (s.Sink, long.Parse(s.Value!, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        CheckCommitted(committed);
    }

    private void CheckCommitted(IReadOnlyList<(string Sink, long Position)> committed)
    {
        if (Log.Damage is not null) { return; }
        var segments = Log.Segments.Select(s => (Path.GetFileName(SegmentFile(s)), s)).ToList();
        if (LandingLogRecovery.CheckCommitted(Log.Folder, segments, Log.DurableEnd, committed) is { } damage)
        {
            Log.ReportDamage(damage);
        }
    }

    /// <summary>
    /// <c>sluice landing repair</c>: makes the damaged log whole (<see cref="LandingLog.Repair"/>) against the sinks'
    /// checkpoints, and puts every range it gave up into the dead-letter store (position: segment and offsets; the bytes,
    /// base64, first 64 KB) and the log. Returns the ranges.
    /// </summary>
    public IReadOnlyList<DroppedBytes> Repair(IReadOnlyList<(string Sink, string CheckpointKey)> sinks)
    {
        ArgumentNullException.ThrowIfNull(sinks);
        var checkpoints = new CheckpointStore(_services.Metadata, _services.Time);
        var committed = sinks.Select(s => checkpoints.Get(s.CheckpointKey)).OfType<string>().Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var dropped = Log.Repair(committed, _services.Time);
        var source = _options.DeadLetterSource(_recipe) + ":landing";
        foreach (var d in dropped)
        {
            var position = $"landing segment {d.Segment}, offsets {d.From}-{d.To} ({d.To - d.From} bytes)";
            var reason = d.Kept is null
                ? "missing from the landing log; sluice landing repair put padding in their place"
                : $"unreadable in the landing log; sluice landing repair put padding in their place (the segment as it was is kept at {d.Kept})";
            _services.DeadLetters.Add(source, position, reason, d.Bytes.Length == 0 ? null : "base64:" + Convert.ToBase64String(d.Bytes.AsSpan(0, Math.Min(d.Bytes.Length, 48 << 10))),
                $"{source}:{d.Segment}:{d.From}");
            HttpIngestLog.Repaired(_log, _options.Stream, d.Segment, d.From, d.To, d.Kept ?? "(nothing was there)");
        }

        return dropped;
    }

    /// <summary>
    /// The pipeline has read everything before the damage: it waits here for the stop, while the process keeps serving
    /// reads with ingest refused and health red (a run-once is caught up here, and fails on the health check after it).
    /// </summary>
    private async Task WaitIfAtDamageAsync(long position, CancellationToken ct)
    {
        if (Log.Damage is { } damage && position >= damage.Offset)
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _services.Time, ct).ConfigureAwait(false);
        }
    }

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        if (resumeAfter is { } resume) { CheckCommitted([("of this pipeline", resume)]); }
        var position = Math.Max(resumeAfter ?? 0, Log.Segments[0]);
        Volatile.Write(ref _target, Log.DurableEnd);
        Volatile.Write(ref _position, position);
        if (position >= Volatile.Read(ref _target))
        {
            // Nothing waiting: an empty batch tells a run-once pipeline it is caught up.
            yield return new RecordBatch(new EventParser(Shape, _pii, 16).Flush(), position);
        }

        var parser = new EventParser(Shape, _pii, 4096);
        var buffer = new byte[ReadBufferBytes];
        var tenants = new TenantNames();
        Func<ReadOnlyMemory<byte>, string> tenantOf = tenants.Get;
        var pieces = new List<ColumnBatch>();
        while (!ct.IsCancellationRequested)
        {
            await WaitIfAtDamageAsync(position, ct).ConfigureAwait(false);
            await Log.WaitForDataAsync(position, ct).ConfigureAwait(false);
            var lingerUntil = _services.Time.GetUtcNow() + _options.BatchLinger;
            var end = position;
            var events = 0;
            var handedEvents = 0;
            while (events < _options.BatchMaxEvents)
            {
                if (Handoff.TryTake(end, Log.DurableEnd, out var handed))
                {
                    if (parser.Main.Count > 0) { pieces.AddRange(parser.Flush()); }
                    pieces.AddRange(handed.Place());
                    end = handed.End;
                    events += handed.Events;
                    handedEvents += handed.Events;
                    continue;
                }

                // What ingest handed off is not read from the log: stop where it starts.
                var n = (int)Math.Min(Log.ReadAt(end, buffer), Math.Max(0, (Handoff.NextStart ?? long.MaxValue) - end));
                if (n == 0)
                {
                    var remaining = lingerUntil - _services.Time.GetUtcNow();
                    if (remaining <= TimeSpan.Zero || !await WaitForMoreAsync(end, remaining, ct).ConfigureAwait(false))
                    {
                        break;
                    }

                    continue;
                }

                var at = 0;
                while (events < _options.BatchMaxEvents)
                {
                    var status = LandingRecord.TryRead(buffer.AsSpan(at, n - at), out var size);
                    if (status == ReadStatus.Incomplete && (at > 0 || n == buffer.Length))
                    {
                        if (at == 0) { buffer = new byte[Math.Min((long)buffer.Length * 2, LandingRecord.MaxRecordBytes)]; }
                        break;
                    }

                    if (status != ReadStatus.Ok)
                    {
                        // What a reader may read always ends on a record boundary (whole appends are fsynced, segments roll
                        // between them), so a record running past it is damage too. Reading it again would spin forever.
                        throw new Core.SluiceException(Log.DamageAt(end, status == ReadStatus.Corrupt
                            ? "a durable record fails its checksum (disk damage?)"
                            : "a durable record runs past the end of what was fsynced").Message);
                    }

                    if (!LandingRecord.IsPadding(buffer.AsSpan(at, size)))
                    {
                        Flatten(parser, LandingRecord.Decode(buffer.AsMemory(at, size), end, tenantOf));
                        events++;
                    }

                    at += size;
                    end += size;
                }
            }

            // Counted once a batch, not per event: every event of the batch came one of the two ways.
            Interlocked.Add(ref _fromHandoff, handedEvents);
            Interlocked.Add(ref _fromLog, events - handedEvents);
            if (end == position)
            {
                continue;
            }

            position = end;
            Volatile.Write(ref _position, end);
            if (pieces.Count == 0)
            {
                yield return new RecordBatch(parser.Flush(), end);
                continue;
            }

            pieces.AddRange(parser.Flush());
            var tables = ByTable(pieces);
            pieces.Clear();
            yield return new RecordBatch(tables, end);
        }
    }

    /// <summary>One batch per table of the stream, in the stream's table order, joining the pieces of each.</summary>
    internal List<ColumnBatch> ByTable(List<ColumnBatch> pieces) =>
        Shape.Tables.Select(schema => ColumnBatchConcat.Join(schema, pieces.Where(p => ReferenceEquals(p.Schema, schema)).ToList())).ToList();

    public Task AcknowledgeAsync(long position, CancellationToken ct)
    {
        Log.Acknowledge(position);
        return Task.CompletedTask;
    }

    private async Task<bool> WaitForMoreAsync(long end, TimeSpan wait, CancellationToken ct)
    {
        try
        {
            await Log.WaitForDataAsync(end, ct).WaitAsync(wait, _services.Time, ct).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>A parser of this stream's events for a reader of landed records (<see cref="Flatten"/>).</summary>
    internal EventParser NewParser(int capacity) => new(Shape, _pii, capacity);

    internal void Flatten(EventParser parser, LandedEvent record)
    {
        var received = DateTime.UnixEpoch.AddMilliseconds(record.ReceivedMs);
        var problem = parser.Parse(record.Json.Span, record.Tenant, received, record.Offset, keep: true, out _);
        if (problem is { } p)
        {
            // Valid at ingest, invalid now: the recipe's schemas changed in between. The event is kept, not dropped.
            _services.DeadLetters.Add(_options.DeadLetterSource(_recipe), $"tenant {record.Tenant}, landing offset {record.Offset}" + (p.Field is null ? "" : $", field '{p.Field}'"),
                $"no longer valid under the current schemas: {p.Message}", StreamIngestor.Payload(record.Json.Span), $"{_options.DeadLetterSource(_recipe)}:offset:{record.Offset}");
            HttpIngestLog.InvalidOnRead(_log, _options.Stream, record.Offset, p.Message);
        }
    }

    /// <summary>Keeps a retiring segment's dedup keys (they must outlive it for the window), then lets it be deleted.</summary>
    private void Retire(string segmentPath)
    {
        if (_options.DedupKey is null)
        {
            return;
        }

        lock (_retireGate)
        {
            _dedup.Persist(ScanKeys(segmentPath), _services.Time.GetUtcNow().ToUnixTimeMilliseconds());
        }
    }

    private static IEnumerable<(ulong Hash, long ReceivedMs)> ScanKeys(string path)
    {
        if (!File.Exists(path)) { yield break; }
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var header = new byte[LandingRecord.HeaderSize];
        long at = 0;
        var length = stream.Length;
        while (at + LandingRecord.HeaderSize <= length)
        {
            stream.Position = at;
            stream.ReadExactly(header);
            var size = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(header);
            if (size < LandingRecord.HeaderSize || at + size > length) { yield break; }
            if (!LandingRecord.IsPadding(header)) { yield return (LandingRecord.KeyHash(header), LandingRecord.ReceivedMs(header)); }
            at += size;
        }
    }

    private string SegmentFile(long start) => Path.Combine(Log.Folder, start.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".seg");

    /// <summary>The backlog is the landed bytes not yet committed by every sink.</summary>
    public void AttachStatus(Core.Status.PipelineStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        status.Backlog = () => new Core.Status.Backlog(Log.BacklogBytes, "bytes");
    }

    /// <summary>The stream's ingest figures at <c>GET /metrics</c>, set before each scrape.</summary>
    private void RegisterGauges(ServerMetrics metrics)
    {
        var queue = metrics.Gauge("sluice_ingest_queue_bytes", "Bytes accepted and waiting for the landing log's fsync (the in-memory queue).", "stream").WithLabels(_options.Stream);
        var fill = metrics.Gauge("sluice_ingest_queue_fill_ratio", "The in-memory queue's fill, 0..1; at 1 requests get 429.", "stream").WithLabels(_options.Stream);
        var inflight = metrics.Gauge("sluice_ingest_inflight_bytes", "Request bodies held in memory now.", "stream").WithLabels(_options.Stream);
        var backlog = metrics.Gauge("sluice_landing_backlog_bytes", "Landed bytes not yet committed by every sink (the slowest sink's lag).", "stream").WithLabels(_options.Stream);
        var segments = metrics.Gauge("sluice_landing_segments", "Segment files of the landing log.", "stream").WithLabels(_options.Stream);
        var read = metrics.Gauge("sluice_pipeline_events_read", "Events the pipeline has taken, as rows ingest flattened (memory) or parsed again from the landing log (log: after a restart, or while the handoff was full).", "stream", "from");
        var dedup = metrics.Gauge("sluice_dedup_keys", "Dedup keys remembered (bounded by dedup.max_keys).", "stream").WithLabels(_options.Stream);
        var lag = metrics.Gauge("sluice_sink_lag_bytes", "Landed bytes a sink has not committed yet.", "stream", "sink");
        metrics.BeforeScrape(() =>
        {
            queue.Set(Log.QueuedBytes);
            fill.Set((double)Log.QueuedBytes / Log.QueueCapacity);
            if (_endpoint is not null) { inflight.Set(_endpoint.Inflight.Used); }
            backlog.Set(Log.BacklogBytes);
            segments.Set(Log.Segments.Count);
            read.WithLabels(_options.Stream, "memory").Set(EventsFromMemory);
            read.WithLabels(_options.Stream, "log").Set(EventsFromLog);
            dedup.Set(Ingestor.DedupKeys);
            if (_sinks.Count == 0) { return; }
            var durable = Log.DurableEnd;
            var checkpoints = new CheckpointStore(_services.Metadata, _services.Time);
            foreach (var (sink, key) in _sinks)
            {
                var value = checkpoints.Get(key);
                var at = value is null ? Log.Segments[0] : long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                lag.WithLabels(_options.Stream, sink).Set(Math.Max(0, durable - at));
            }
        });
    }

    public bool CanReplay(DeadLetter letter) => letter is not null && letter.Source == _options.DeadLetterSource(_recipe);

    /// <summary>
    /// Validates a rejected event again under the current schemas and, when it passes now, appends it to the landing
    /// log for its tenant (the pipeline of the next <c>run</c> takes it from there; a duplicate key is accepted and lands
    /// once). Only the process that owns the landing log can do this: beside a running server, <c>sluice dlq replay</c>
    /// hands the letter to it (<see cref="Core.DeadLetters.ReplayRequests"/>).
    /// </summary>
    public async Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(letter);
        var tenant = letter.Position.StartsWith("tenant ", StringComparison.Ordinal) ? letter.Position[7..].Split(',')[0] : null;
        var payload = letter.Payload ?? "";
        if (tenant is null)
        {
            return $"the letter does not name its tenant (position '{letter.Position}')";
        }

        if (payload.Contains("\n... (truncated: the event was ", StringComparison.Ordinal))
        {
            return "only the first 64 KB of this event were kept; it cannot be replayed";
        }

        var body = payload.StartsWith("base64:", StringComparison.Ordinal) ? Convert.FromBase64String(payload[7..]) : Encoding.UTF8.GetBytes(payload);
        var outcome = await Ingestor.IngestAsync(body, [new EventSlice(0, 0, body.Length, null)], tenant, $"replay of dead letter {letter.Id}").ConfigureAwait(false);
        return outcome.Status switch
        {
            IngestStatus.Accepted when outcome.Rejected.Count == 0 => null,
            IngestStatus.Accepted => (outcome.Rejected[0].Field is { } f ? $"field '{f}': " : "") + outcome.Rejected[0].Error,
            _ => outcome.Message,
        };
    }

    public async ValueTask DisposeAsync() => await Log.DisposeAsync().ConfigureAwait(false);

    /// <summary>Tenant names decoded once each, not once per event.</summary>
    private sealed class TenantNames
    {
        private readonly Dictionary<int, (byte[] Bytes, string Name)> _known = [];

        public string Get(ReadOnlyMemory<byte> bytes)
        {
            var span = bytes.Span;
            var key = System.IO.Hashing.XxHash32.HashToUInt32(span).GetHashCode();
            if (_known.TryGetValue(key, out var found) && span.SequenceEqual(found.Bytes)) { return found.Name; }
            if (_known.Count > 10_000) { _known.Clear(); }
            var name = Encoding.UTF8.GetString(span);
            _known[key] = (span.ToArray(), name);
            return name;
        }
    }
}

internal static partial class HttpIngestLog
{
    [LoggerMessage(5201, LogLevel.Warning, "Stream {Stream}: the event at landing offset {Offset} no longer passes the current schemas ({Reason}); it went to the dead-letter store")]
    public static partial void InvalidOnRead(ILogger logger, string stream, long offset, string reason);

    [LoggerMessage(9204, LogLevel.Warning, "Stream {Stream}: repair gave up offsets {From}-{To} of landing segment {Segment} (padding in their place, their bytes in the dead-letter store; the segment as it was: {Kept})")]
    public static partial void Repaired(ILogger logger, string stream, string segment, long from, long to, string kept);
}
