using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.HttpIngest;

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
    private readonly ConcurrentBag<EventParser> _parsers = [];
    private long _nextExpiry;

    public StreamIngestor(HttpIngestOptions options, StreamShape shape, LandingLog log, DedupIndex dedup, DeadLetterStore deadLetters, MetadataStore metadata, TimeProvider time, string recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _shape = shape;
        _log = log;
        _dedup = dedup;
        _deadLetters = deadLetters;
        _metadata = metadata;
        _time = time;
        _source = options.DeadLetterSource(recipe);
    }

    public int DedupKeys { get { lock (_appendGate) { return _dedup.Count; } } }

    /// <param name="events">
    /// The body's events as split: NDJSON lines, or a JSON body that came back as <see cref="IngestStatus.MalformedBody"/>.
    /// Null for an <c>application/json</c> body, read and validated in one pass.
    /// </param>
    public async Task<IngestOutcome> IngestAsync(ReadOnlyMemory<byte> body, IReadOnlyList<EventSlice>? events, string tenant, string requestId)
    {
        var request = new RequestEvents(_options, tenant);
        if (!_parsers.TryTake(out var parser)) { parser = new EventParser(_shape, null, 16); }
        try
        {
            if (events is not null)
            {
                request.Read(body.Span, events, parser);
            }
            else if (!request.TryReadJson(body.Span, parser))
            {
                return new IngestOutcome(IngestStatus.MalformedBody, 0, 0, []);
            }
        }
        finally
        {
            _parsers.Add(parser);
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
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        long end;
        var duplicates = 0;
        lock (_appendGate)
        {
            if (now >= _nextExpiry)
            {
                _dedup.Expire(now);
                _nextExpiry = now + (long)ExpireEvery.TotalMilliseconds;
            }

            var fresh = new List<(EventSlice Slice, ulong Hash)>(valid.Count);
            HashSet<ulong>? seen = null;
            var bytes = 0L;
            foreach (var v in valid)
            {
                if (v.Hash != 0 && (_dedup.Contains(v.Hash) || !(seen ??= []).Add(v.Hash)))
                {
                    duplicates++;
                    continue;
                }

                fresh.Add(v);
                bytes += LandingRecord.Size(tenantBytes.Length, v.Slice.Length);
            }

            if (bytes > int.MaxValue)
            {
                return new IngestOutcome(IngestStatus.QueueFull, 0, 0, [], "the request is too large for one append; split it");
            }

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
            if (end < 0)
            {
                return new IngestOutcome(IngestStatus.QueueFull, 0, 0, [], $"the stream's queue is full ({Core.Config.Sizes.Format(_log.QueueCapacity)} waiting for disk); retry shortly");
            }

            foreach (var (_, hash) in fresh) { _dedup.Add(hash, now); }
        }

        // Duplicates wait too: the event they repeat may still be on its way to disk.
        await _log.WaitDurableAsync(end).ConfigureAwait(false);
        if (rejected.Count > 0)
        {
            KeepRejected(body, rejected, tenant, requestId);
        }

        return new IngestOutcome(IngestStatus.Accepted, valid.Count, duplicates, rejected.Select(r => r.Rejection).ToList());
    }

    /// <summary>Rejected events go to the dead-letter store in one transaction; a client's retry of the same bad event does not add a second letter.</summary>
    private void KeepRejected(ReadOnlyMemory<byte> body, List<(EventSlice Slice, IngestRejection Rejection)> rejected, string tenant, string requestId)
    {
        using var c = _metadata.Open();
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
