using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

public enum IngestStatus
{
    /// <summary>Valid events are durable in the landing log; invalid ones are in the dead-letter store.</summary>
    Accepted,

    /// <summary>An event names another tenant than the token's: nothing of the request landed.</summary>
    WrongTenant,

    /// <summary>The in-memory queue is full: nothing landed, come back shortly (429).</summary>
    QueueFull,

    /// <summary>The sinks are too far behind: nothing landed, come back later (503).</summary>
    Backlogged,

    /// <summary>More events than a request may carry (413).</summary>
    TooManyEvents,

    /// <summary>
    /// An <c>application/json</c> body the one pass could not read (not JSON, not UTF-8, values that are not objects):
    /// nothing landed; the caller splits it exactly, for the 400 or to reject each value that is not an object.
    /// </summary>
    MalformedBody,
}

/// <summary>One event the request could not land, and why.</summary>
public sealed record IngestRejection(int Index, int? Line, string? Field, string Error);

public sealed record IngestOutcome(IngestStatus Status, int Accepted, int Duplicates, IReadOnlyList<IngestRejection> Rejected, string? Message = null);

/// <summary>
/// The ingest path of one stream, without HTTP: validates each event of a request against its schema version, refuses
/// the whole request if any event names another tenant, drops duplicates of keys seen within the dedup window (they
/// count as accepted), appends the rest to the landing log atomically with the dedup decision, waits for the fsync
/// that covers them, and keeps the invalid events in the dead-letter store.
/// </summary>
public sealed class StreamIngestor
{
    private static readonly TimeSpan ExpireEvery = TimeSpan.FromSeconds(10);

    private readonly HttpIngestOptions _options;
    private readonly StreamShape _shape;
    private readonly LandingLog _log;
    private readonly DedupIndex _dedup;
    private readonly DeadLetterStore _deadLetters;
    private readonly MetadataStore _metadata;
    private readonly TimeProvider _time;
    private readonly string _source;
    private readonly Lock _appendGate = new();
    private readonly ConcurrentBag<Scratch> _scratch = [];
    private readonly IngestHandoff? _handoff;
    private readonly PiiHasher? _pii;
    private readonly IEventPublisher? _publisher;
    private long _nextExpiry;

    /// <param name="publisher">Cluster mode: where accepted events land instead of <paramref name="log"/> (no handoff then).</param>
    public StreamIngestor(HttpIngestOptions options, StreamShape shape, LandingLog log, DedupIndex dedup, DeadLetterStore deadLetters, MetadataStore metadata, TimeProvider time, string recipe,
        IngestHandoff? handoff = null, PiiHasher? pii = null, IEventPublisher? publisher = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _publisher = publisher;
        _handoff = handoff;
        _pii = pii;
        _shape = shape;
        _log = log;
        _dedup = dedup;
        _deadLetters = deadLetters;
        _metadata = metadata;
        _time = time;
        _source = options.DeadLetterSource(recipe);
    }

    public int DedupKeys { get { lock (_appendGate) { return _dedup.Count; } } }

    /// <summary>The landing log's damage, when it has any: nothing is accepted then (the append would be refused).</summary>
    public LandingLogDamage? Damage => _log.Damage;

    /// <param name="events">
    /// The body's events as split: NDJSON lines, or a JSON body that came back as <see cref="IngestStatus.MalformedBody"/>.
    /// Null for an <c>application/json</c> body, read and validated in one pass.
    /// </param>
    public async Task<IngestOutcome> IngestAsync(ReadOnlyMemory<byte> body, IReadOnlyList<EventSlice>? events, string tenant, string requestId)
    {
        if (!_scratch.TryTake(out var scratch)) { scratch = new Scratch(_options, _shape, _pii); }
        try
        {
            return await IngestAsync(body, events, tenant, requestId, scratch).ConfigureAwait(false);
        }
        finally
        {
            if (scratch.Reusable) { _scratch.Add(scratch); }
        }
    }

    private async Task<IngestOutcome> IngestAsync(ReadOnlyMemory<byte> body, IReadOnlyList<EventSlice>? events, string tenant, string requestId, Scratch scratch)
    {
        // Before the parse: a cluster past its bound spends as little of its CPU on a refused request as it can.
        if (_publisher?.Backlogged is { } backlogged)
        {
            return new IngestOutcome(IngestStatus.Backlogged, 0, 0, [], backlogged);
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        // Flattened while validated when the pipeline can take the rows from memory; the landed record keeps the same
        // arrival time, so rows read back from the log after a restart are the same rows.
        var flatten = _handoff is not null && _handoff.HasRoom(body.Length);
        var request = scratch.Request;
        var parser = scratch.Parser;
        request.Reset(tenant, flatten, DateTime.UnixEpoch.AddMilliseconds(now));
        IReadOnlyList<ColumnBatch>? rows = null;
        try
        {
            if (events is not null)
            {
                request.Read(body.Span, events, parser);
            }
            else if (!request.TryReadJson(body.Span, parser))
            {
                parser.Discard();
                return new IngestOutcome(IngestStatus.MalformedBody, 0, 0, []);
            }

            if (request.Refusal is not null || !flatten || request.Valid.Count == 0)
            {
                parser.Discard();
            }
            else
            {
                rows = parser.Flush();
            }
        }
        catch
        {
            parser.Discard();
            throw;
        }

        if (request.Refusal is { } refusal)
        {
            return refusal;
        }

        var valid = request.Valid;
        var rejected = request.Rejected;
        if (valid.Count > 0 && _log.BacklogBytes > _options.MaxBacklogBytes)
        {
            return new IngestOutcome(IngestStatus.Backlogged, 0, 0, [], $"the sinks are {Core.Config.Sizes.Format(_log.BacklogBytes)} behind (max_backlog_bytes {Core.Config.Sizes.Format(_options.MaxBacklogBytes)}); retry later");
        }

        var tenantBytes = Encoding.UTF8.GetBytes(tenant);
        long end;
        var duplicates = 0;
        List<PublishedEvent>? publish = null;
        var fresh = scratch.Fresh;
        fresh.Clear();
        lock (_appendGate)
        {
            if (now >= _nextExpiry)
            {
                _dedup.Expire(now);
                _nextExpiry = now + (long)ExpireEvery.TotalMilliseconds;
            }

            var bytes = 0L;
            const int Ahead = 16;
            for (var i = 0; i < Math.Min(Ahead, valid.Count); i++) { _dedup.Prefetch(valid[i].Hash); }
            for (var i = 0; i < valid.Count; i++)
            {
                var v = valid[i];
                if (i + Ahead < valid.Count) { _dedup.Prefetch(valid[i + Ahead].Hash); }
                // Remembered at once (one probe of the table, which also catches a key twice in this request), and taken
                // back below if the events do not land.
                // In a cluster the log deduplicates (every worker's requests, the event's key as its id), not this index.
                if (v.Hash != 0 && _publisher is null && !_dedup.Add(v.Hash, now))
                {
                    duplicates++;
                    continue;
                }

                fresh.Add(v);
                bytes += LandingRecord.Size(tenantBytes.Length, v.Slice.Length);
            }

            if (bytes > int.MaxValue)
            {
                WithdrawKeys(fresh);
                return new IngestOutcome(IngestStatus.QueueFull, 0, 0, [], "the request is too large for one append; split it");
            }

            if (_publisher is not null)
            {
                publish = Records(body.Span, fresh, tenant, tenantBytes, now, (int)bytes);
                end = 0;
            }
            else
            {
                // Handed off before the append (see IngestHandoff): only this lock appends, so the log's end is where they land.
                HandedOffRows? handed = null;
                if (rows is not null && duplicates == 0 && fresh.Count > 0)
                {
                    // A request with duplicates lands fewer events than it has rows: the pipeline reads it from the log instead.
                    var start = _log.AppendedEnd;
                    var starts = new long[fresh.Count];
                    var at = start;
                    for (var i = 0; i < fresh.Count; i++)
                    {
                        starts[i] = at;
                        at += LandingRecord.Size(tenantBytes.Length, fresh[i].Slice.Length);
                    }

                    handed = new HandedOffRows(start, start + bytes, rows, starts, _shape.OffsetColumns);
                    if (!_handoff!.TryAdd(handed)) { handed = null; }
                }

                try
                {
                    end = _log.Append((int)bytes, span =>
                    {
                        var at = 0;
                        foreach (var (slice, hash) in fresh)
                        {
                            var json = body.Span.Slice(slice.Start, slice.Length);
                            LandingRecord.Write(span[at..], hash, now, tenantBytes, json);
                            at += LandingRecord.Size(tenantBytes.Length, json.Length);
                        }

                        return at;
                    });
                }
                catch
                {
                    if (handed is not null) { _handoff!.Withdraw(handed); }
                    WithdrawKeys(fresh);
                    throw;
                }

                if (handed is not null && end != handed.End)
                {
                    // Refused (the queue is full, -1): these offsets were never the rows'. Only this lock appends, so a
                    // refusal is the one way the end can differ.
                    _handoff!.Withdraw(handed);
                }

                if (end < 0)
                {
                    WithdrawKeys(fresh);
                    return new IngestOutcome(IngestStatus.QueueFull, 0, 0, [], $"the stream's queue is full ({Core.Config.Sizes.Format(_log.QueueCapacity)} waiting for disk); retry shortly");
                }
            }
        }

        if (publish is not null)
        {
            try
            {
                duplicates = publish.Count == 0 ? 0 : await _publisher!.PublishAsync(publish, CancellationToken.None).ConfigureAwait(false);
            }
            catch (EventsNotStoredException e)
            {
                return new IngestOutcome(IngestStatus.Backlogged, 0, 0, [], e.Message);
            }
        }
        else
        {
            // Duplicates wait too: the event they repeat may still be on its way to disk.
            await _log.WaitDurableAsync(end).ConfigureAwait(false);
        }

        if (rejected.Count > 0)
        {
            // A synchronous transaction: off the socket thread the publish's acknowledgement may have resumed this on.
            await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
            KeepRejected(body, rejected, tenant, requestId);
        }

        return new IngestOutcome(IngestStatus.Accepted, valid.Count, duplicates, rejected.Select(r => r.Rejection).ToList());
    }

    /// <summary>The fresh events as landing records, one buffer for the request (the lock is held).</summary>
    private static List<PublishedEvent> Records(ReadOnlySpan<byte> body, List<(EventSlice Slice, ulong Hash)> fresh, string tenant, byte[] tenantBytes, long now, int bytes)
    {
        var buffer = new byte[bytes];
        var records = new List<PublishedEvent>(fresh.Count);
        var at = 0;
        foreach (var (slice, hash) in fresh)
        {
            var json = body.Slice(slice.Start, slice.Length);
            var size = LandingRecord.Size(tenantBytes.Length, json.Length);
            LandingRecord.Write(buffer.AsSpan(at, size), hash, now, tenantBytes, json);
            records.Add(new PublishedEvent(hash, tenant, buffer.AsMemory(at, size)));
            at += size;
        }

        return records;
    }

    /// <summary>The keys of events that were to land and did not (the lock is held).</summary>
    private void WithdrawKeys(List<(EventSlice Slice, ulong Hash)> fresh)
    {
        foreach (var (_, hash) in fresh) { _dedup.Withdraw(hash); }
    }

    /// <summary>
    /// What one request needs while it is ingested, kept for the next one: a parser, the event lists.
    /// One exists per request in flight; one that grew for a huge request is not kept (<see cref="Reusable"/>).
    /// </summary>
    private sealed class Scratch(HttpIngestOptions options, StreamShape shape, PiiHasher? pii)
    {
        private const int KeepRows = 16_384;

        public EventParser Parser { get; } = new(shape, pii, 16);

        public RequestEvents Request { get; } = new(options, "");

        public List<(EventSlice Slice, ulong Hash)> Fresh { get; } = [];

        public bool Reusable => Parser.Main.Capacity <= KeepRows && Request.Valid.Capacity <= KeepRows && Fresh.Capacity <= KeepRows;
    }

    /// <summary>Rejected events go to the dead-letter store in one transaction; a client's retry of the same bad event does not add a second letter.</summary>
    private void KeepRejected(ReadOnlyMemory<byte> body, List<(EventSlice Slice, IngestRejection Rejection)> rejected, string tenant, string requestId)
    {
        using var c = _metadata.Connect();
        using var tx = c.BeginTransaction();
        foreach (var (slice, r) in rejected)
        {
            var raw = body.Span.Slice(slice.Start, slice.Length);
            var dedup = $"{_source}:{Convert.ToHexStringLower(SHA256.HashData([.. Encoding.UTF8.GetBytes(tenant + "\0"), .. raw]))[..32]}";
            var position = $"tenant {tenant}, request {requestId}, {EventParser.Where(slice.Index, slice.Line)}" + (r.Field is null ? "" : $", field '{r.Field}'");
            _deadLetters.Add(c, tx, _source, position, r.Error, Payload(raw), dedup);
        }

        tx.Commit();
    }

    /// <summary>The payload as text; invalid UTF-8 is kept as base64 so not a byte is lost; huge events keep their first 64 KB.</summary>
    internal static string Payload(ReadOnlySpan<byte> raw)
    {
        const int Max = 64 << 10;
        var cut = raw.Length > Max ? raw[..Max] : raw;
        var text = System.Text.Unicode.Utf8.IsValid(cut) ? Encoding.UTF8.GetString(cut) : "base64:" + Convert.ToBase64String(cut);
        return raw.Length > Max ? text + $"\n... (truncated: the event was {raw.Length} bytes)" : text;
    }
}
