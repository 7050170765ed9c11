using System.Text.Json;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The events of one request, validated and not yet landed: the valid ones with their dedup hashes, the rejected ones
/// with why, or why nothing of the request may land (<see cref="Refusal"/>). Whatever way the body is read, the
/// outcome is the one of the exact split: a body that is not JSON is a 400 before anything else, then too many events
/// (413), then the first event naming another tenant (403), then each event on its own.
/// With <paramref name="flatten"/>, each valid event is also flattened into the parser's rows as it is read (its
/// <c>_offset</c> is its ordinal among the valid events, received at <paramref name="receivedAt"/>), for the pipeline.
/// </summary>
internal sealed class RequestEvents(HttpIngestOptions options, string tenant, bool flatten = false, DateTime receivedAt = default)
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    private int _count;
    private string? _wrongTenant;
    private string _tenant = tenant;
    private bool _flatten = flatten;
    private DateTime _receivedAt = receivedAt;

    /// <summary>Starts over for another request, keeping the lists' memory (requests are pooled per stream).</summary>
    public void Reset(string tenantOfToken, bool flattenRows, DateTime arrival)
    {
        _tenant = tenantOfToken;
        _flatten = flattenRows;
        _receivedAt = arrival;
        _count = 0;
        _wrongTenant = null;
        Valid.Clear();
        Rejected.Clear();
    }

    public List<(EventSlice Slice, ulong Hash)> Valid { get; } = [];

    public List<(EventSlice Slice, IngestRejection Rejection)> Rejected { get; } = [];

    /// <summary>Why nothing of the request may land (too many events, another tenant named), or null.</summary>
    public IngestOutcome? Refusal =>
        _count > options.MaxEventsPerRequest
            ? new IngestOutcome(IngestStatus.TooManyEvents, 0, 0, [], $"{_count} events in one request, more than max_events_per_request ({options.MaxEventsPerRequest}); split it")
            : _wrongTenant is { } message ? new IngestOutcome(IngestStatus.WrongTenant, 0, 0, [], message) : null;

    /// <summary>Past the first refusal the events' contents no longer matter.</summary>
    private bool Refused => _count > options.MaxEventsPerRequest || _wrongTenant is not null;

    /// <summary>Validates events already split: NDJSON lines, or a JSON body <see cref="TryReadJson"/> could not read.</summary>
    public void Read(ReadOnlySpan<byte> body, IReadOnlyList<EventSlice> events, EventParser parser)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(parser);
        _count = events.Count;
        if (Refused) { return; }
        Valid.Capacity = events.Count;
        foreach (var e in events)
        {
            var json = body.Slice(e.Start, e.Length);
            var problem = parser.ParsePending(json, _tenant, _flatten, out var parsed);
            Keep(parser, json, Add(e, problem, parser.LastTenant, parsed), parsed);
            if (Refused) { return; }
        }
    }

    /// <summary>
    /// Validates an <c>application/json</c> body of one object or an array of objects in a single pass of one reader,
    /// each event as the reader reaches it. False, with nothing to use, when the body is not valid UTF-8, not JSON, or
    /// holds values that are not objects: the exact split (<see cref="RequestBody.SplitJson"/>) then says why, or
    /// splits the values so that each is rejected on its own.
    /// </summary>
    public bool TryReadJson(ReadOnlySpan<byte> body, EventParser parser)
    {
        ArgumentNullException.ThrowIfNull(parser);
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return false;
        }

        var offset = RequestBody.ContentStart(body);
        var reader = new Utf8JsonReader(body[offset..], ReaderOptions);
        try
        {
            if (!reader.Read()) { return false; }
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                ReadEvent(ref reader, body, offset, parser);
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject) { return false; }
                    ReadEvent(ref reader, body, offset, parser);
                }
            }
            else
            {
                return false;
            }

            // Anything after the value throws; only white space may follow.
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
        catch (Exception e) when (EventParser.IsValueError(e))
        {
            // A value that threw (a check missed): the exact split reads each event on its own, so the one that threw
            // is rejected alone and the others still land.
            return false;
        }
    }

    private void ReadEvent(ref Utf8JsonReader reader, ReadOnlySpan<byte> body, int offset, EventParser parser)
    {
        var index = _count++;
        if (Refused)
        {
            // Still read through: a body that is not JSON further on is a 400, whatever came before.
            reader.Skip();
            return;
        }

        var start = (int)reader.TokenStartIndex;
        var problem = _flatten ? parser.ReadPending(ref reader, _tenant, out var parsed) : parser.Validate(ref reader, _tenant, out parsed);
        var slice = new EventSlice(index, offset + start, (int)reader.BytesConsumed - start, null);
        Keep(parser, body.Slice(slice.Start, slice.Length), Add(slice, problem, parser.LastTenant, parsed), parsed);
    }

    private void Keep(EventParser parser, ReadOnlySpan<byte> json, bool valid, ParsedEvent parsed)
    {
        if (!_flatten) { return; }
        if (valid) { parser.CommitPending(json, _tenant, _receivedAt, Valid.Count - 1, parsed.Version); } else { parser.AbortPending(); }
    }

    /// <summary>True when the event counts as valid (its row, if flattened, is to be kept).</summary>
    private bool Add(EventSlice e, EventProblem? problem, string? named, ParsedEvent parsed)
    {
        if (named is not null && !string.Equals(named, _tenant, StringComparison.Ordinal))
        {
            _wrongTenant = $"{EventParser.Where(e.Index, e.Line)} has {options.TenantField} '{Clip(named)}' but the token is for tenant '{_tenant}'; nothing of this request was accepted";
            return false;
        }

        if (e.Length > options.MaxEventBytes)
        {
            problem = new EventProblem(null, $"the event is {e.Length} bytes, more than max_event_bytes ({Core.Config.Sizes.Format(options.MaxEventBytes)})");
        }

        if (problem is { } p)
        {
            Rejected.Add((e, new IngestRejection(e.Index, e.Line, p.Field, p.Message)));
            return false;
        }

        Valid.Add((e, parsed.KeyHash));
        return true;
    }

    private static string Clip(string text) => Core.Text.TextClip.Clip(text, 64);
}
