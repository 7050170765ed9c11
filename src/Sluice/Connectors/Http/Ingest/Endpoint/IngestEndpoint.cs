using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using MinDataRate = Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;
using Sluice.Core.Config;
using Sluice.Serving;
using Sluice.Serving.Observability;
using Sluice.Serving.OpenApi;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// <c>POST /v1/streams/{stream}/events</c>: checks the token (401/403), the content type (415), the size (413) and the
/// memory budget and the tenant's share of it (429), reads the body at the stream's minimum rate (408), splits the body (400 for JSON that does not parse), hands the events to the stream's
/// <see cref="StreamIngestor"/>, and answers 202 only once the accepted events are fsynced.
/// </summary>
internal sealed class IngestEndpoint(HttpIngestOptions options, StreamIngestor ingestor, ServingContext context)
{
    /// <summary>Recorded (in the request counter only) when the client disconnected before the answer.</summary>
    private const int StatusClientClosedRequest = 499;

    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly ByteBudget _inflight = new(options.InflightBytes, options.TenantInflightShare);
    private readonly MinDataRate? _minBodyRate = options.MinBodyRate > 0 ? new MinDataRate(options.MinBodyRate, options.BodyRateGrace) : null;
    private readonly Prometheus.Counter _events = context.Metrics.Counter("sluice_ingest_events_total", "Events received, by stream and outcome (accepted, duplicate, rejected).", "stream", "outcome");
    private readonly Prometheus.Counter _requests = context.Metrics.Counter("sluice_ingest_requests_total", "Ingest requests, by stream and HTTP status.", "stream", "code");
    private readonly Prometheus.Histogram _latency = context.Metrics.Histogram("sluice_ingest_ack_seconds", "Time from request start to the durable 202, by stream.", LatencyBuckets, "stream");

    public ByteBudget Inflight => _inflight;

    public void Map(IEndpointRouteBuilder routes)
    {
        routes.MapPost($"/v1/streams/{options.Stream}/events", (Func<HttpContext, Task>)HandleAsync)
            .WithSummary($"Ingest events into stream '{options.Stream}': one JSON object, a JSON array, or NDJSON (application/x-ndjson). 202 once durable.")
            .Body(IngestBodySchema.For(options))
            .Access(ApiAccess.Writer)
            .Produces<IngestResponse>(StatusCodes.Status202Accepted)
            .Produces(StatusCodes.Status400BadRequest).Produces(StatusCodes.Status401Unauthorized).Produces(StatusCodes.Status403Forbidden).Produces(StatusCodes.Status408RequestTimeout)
            .Produces(StatusCodes.Status413PayloadTooLarge).Produces(StatusCodes.Status415UnsupportedMediaType)
            .Produces(StatusCodes.Status429TooManyRequests).Produces(StatusCodes.Status503ServiceUnavailable).Produces(StatusCodes.Status507InsufficientStorage);
    }

    public async Task HandleAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var started = Stopwatch.GetTimestamp();
        var status = await HandleCoreAsync(http).ConfigureAwait(false);
        _requests.WithLabels(options.Stream, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
        if (status == StatusCodes.Status202Accepted)
        {
            _latency.WithLabels(options.Stream).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    private async Task<int> HandleCoreAsync(HttpContext http)
    {
        var request = http.Request;
        var caller = context.Auth.Authenticate(request, out var authProblem);
        if (caller is null)
        {
            return await FailAsync(http, StatusCodes.Status401Unauthorized, authProblem!).ConfigureAwait(false);
        }

        if (!caller.MayWrite(options.Stream))
        {
            var why = caller.Role == Serving.Auth.TokenRole.Writer ? $"this writer token is limited to streams {string.Join(", ", caller.Streams ?? [])}" : $"a {caller.Role.ToString().ToLowerInvariant()} token cannot ingest; use a writer token";
            return await FailAsync(http, StatusCodes.Status403Forbidden, $"may not write stream '{options.Stream}': {why}").ConfigureAwait(false);
        }

        var ndjson = false;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var media) || !IsSupported(media, out ndjson))
        {
            return await FailAsync(http, StatusCodes.Status415UnsupportedMediaType,
                $"Content-Type '{request.ContentType}' is not accepted: send application/json (an object or an array of objects) or application/x-ndjson (one object per line), UTF-8").ConfigureAwait(false);
        }

        if (ingestor.Damage is { } damage)
        {
            return await DamagedAsync(http, damage).ConfigureAwait(false);
        }

        var declared = request.ContentLength;
        if (declared > options.MaxRequestBytes)
        {
            return await TooLargeAsync(http).ConfigureAwait(false);
        }

        var reserve = declared ?? options.MaxRequestBytes;
        switch (_inflight.TryTake(caller.Tenant, reserve))
        {
            case BudgetAnswer.Full:
                return await FailAsync(http, StatusCodes.Status429TooManyRequests, "too many request bodies in memory at once; retry shortly", retryAfter: 1).ConfigureAwait(false);
            case BudgetAnswer.TenantFull:
                return await FailAsync(http, StatusCodes.Status429TooManyRequests,
                    $"this tenant's requests in flight hold its share of the stream's memory (tenant_inflight_share {options.TenantInflightShare:0.##} of inflight_bytes {Sizes.Format(options.InflightBytes)}); retry shortly", retryAfter: 1).ConfigureAwait(false);
        }

        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate && request.Protocol == HttpProtocol.Http11)
        {
            // Per stream, before the body is read (Kestrel allows it only then, and only on HTTP/1.1).
            rate.MinDataRate = _minBodyRate;
        }

        byte[]? buffer = null;
        try
        {
            int length;
            try
            {
                (buffer, length) = await ReadBodyAsync(request, declared, http.RequestAborted).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return await TooLargeAsync(http).ConfigureAwait(false);
            }

            if (buffer is null)
            {
                return await TooLargeAsync(http).ConfigureAwait(false);
            }

            var body = buffer.AsMemory(0, length);
            List<EventSlice>? events = null;
            if (ndjson)
            {
                events = [];
                RequestBody.SplitNdjson(body.Span, events);
            }

            var outcome = await ingestor.IngestAsync(body, events, caller.Tenant, http.TraceIdentifier).ConfigureAwait(false);
            if (outcome.Status == IngestStatus.MalformedBody)
            {
                // Only a body the one pass cannot read pays for the exact split: the 400 with line and byte, or values
                // that are not objects, each rejected on its own.
                events = [];
                if (RequestBody.SplitJson(body.Span, events) is { } error)
                {
                    return await BadBodyAsync(http, error).ConfigureAwait(false);
                }

                outcome = await ingestor.IngestAsync(body, events, caller.Tenant, http.TraceIdentifier).ConfigureAwait(false);
            }

            switch (outcome.Status)
            {
                case IngestStatus.WrongTenant:
                    return await FailAsync(http, StatusCodes.Status403Forbidden, outcome.Message!).ConfigureAwait(false);
                case IngestStatus.TooManyEvents:
                    return await FailAsync(http, StatusCodes.Status413PayloadTooLarge, outcome.Message!).ConfigureAwait(false);
                case IngestStatus.QueueFull:
                    return await FailAsync(http, StatusCodes.Status429TooManyRequests, outcome.Message!, retryAfter: 1).ConfigureAwait(false);
                case IngestStatus.Backlogged:
                    return await FailAsync(http, StatusCodes.Status503ServiceUnavailable, outcome.Message!, retryAfter: 5).ConfigureAwait(false);
            }

            _events.WithLabels(options.Stream, "accepted").Inc(outcome.Accepted - outcome.Duplicates);
            if (outcome.Duplicates > 0) { _events.WithLabels(options.Stream, "duplicate").Inc(outcome.Duplicates); }
            if (outcome.Rejected.Count > 0) { _events.WithLabels(options.Stream, "rejected").Inc(outcome.Rejected.Count); }
            await WriteAcceptedAsync(http, outcome).ConfigureAwait(false);
            return StatusCodes.Status202Accepted;
        }
        catch (Exception e) when (http.RequestAborted.IsCancellationRequested && e is IOException or OperationCanceledException or BadHttpRequestException)
        {
            // The client went away mid-request: nobody is left to answer, and it is no server error. Events already
            // appended stay (a retry of them is a duplicate and lands once).
            return StatusClientClosedRequest;
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status408RequestTimeout)
        {
            // Slower than min_body_rate: Kestrel closes the connection after this answer.
            http.Response.Headers.Connection = "close";
            return await FailAsync(http, StatusCodes.Status408RequestTimeout,
                $"the request body arrived slower than min_body_rate ({Sizes.Format(options.MinBodyRate)}/s after {options.BodyRateGrace.TotalSeconds:0.#} s); send it at once").ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            return await FailAsync(http, e.StatusCode, $"the request body could not be read: {e.Message}").ConfigureAwait(false);
        }
        catch (LandingLogDamagedException e)
        {
            return await DamagedAsync(http, e.Damage).ConfigureAwait(false);
        }
        catch (IOException e) when (Core.IO.DiskFull.Is(e))
        {
            return await FailAsync(http, StatusCodes.Status507InsufficientStorage,
                $"the landing log cannot be written: no space left on device ({Core.IO.DiskFull.Describe(e)}); nothing of this request was acknowledged: send it again once space is freed and the server restarted",
                retryAfter: 30).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            return await FailAsync(http, StatusCodes.Status503ServiceUnavailable, $"the landing log cannot be written: {e.Message}", retryAfter: 30).ConfigureAwait(false);
        }
        finally
        {
            if (buffer is not null) { ArrayPool<byte>.Shared.Return(buffer); }
            _inflight.Give(caller.Tenant, reserve);
        }
    }

    /// <summary>Reads the whole body into a pooled buffer; null when it turns out larger than the limit (no Content-Length).</summary>
    private async Task<(byte[]? Buffer, int Length)> ReadBodyAsync(HttpRequest request, long? declared, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1024, declared ?? 64 * 1024));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= options.MaxRequestBytes)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return (null, 0);
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(options.MaxRequestBytes + 1, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var n = await request.Body.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                if (n == 0) { break; }
                length += n;
                if (length > options.MaxRequestBytes)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return (null, 0);
                }
            }

            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private Task<int> BadBodyAsync(HttpContext http, BodyError error)
    {
        _events.WithLabels(options.Stream, "rejected").Inc();
        return FailAsync(http, StatusCodes.Status400BadRequest, $"{error.Message} (line {error.Line}, byte {error.Byte})",
            extra: new Dictionary<string, object> { ["line"] = error.Line, ["byte"] = error.Byte });
    }

    private static bool IsSupported(MediaTypeHeaderValue media, out bool ndjson)
    {
        var type = media.MediaType.Value ?? "";
        ndjson = type.Equals("application/x-ndjson", StringComparison.OrdinalIgnoreCase) || type.Equals("application/ndjson", StringComparison.OrdinalIgnoreCase);
        var json = type.Equals("application/json", StringComparison.OrdinalIgnoreCase);
        var charset = media.Charset.Value;
        return (json || ndjson) && (charset is null || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>No 202 for events that could not land: the log is damaged until an operator repairs it.</summary>
    private static Task<int> DamagedAsync(HttpContext http, LandingLogDamage damage) =>
        FailAsync(http, StatusCodes.Status503ServiceUnavailable, damage.Message,
            extra: new Dictionary<string, object> { ["segment"] = damage.Segment, ["offset"] = damage.Offset });

    private Task<int> TooLargeAsync(HttpContext http) =>
        FailAsync(http, StatusCodes.Status413PayloadTooLarge, $"the body is larger than max_request_bytes ({Sizes.Format(options.MaxRequestBytes)}); split it into several requests");

    private static async Task<int> FailAsync(HttpContext http, int status, string message, int? retryAfter = null, IReadOnlyDictionary<string, object>? extra = null)
    {
        if (status == StatusCodes.Status413PayloadTooLarge)
        {
            // The rest of an oversized body is not read: close the connection rather than drain it.
            http.Response.Headers.Connection = "close";
        }

        await HttpResults.ErrorAsync(http, status, message, retryAfterSeconds: retryAfter, extra: extra).ConfigureAwait(false);
        return status;
    }

    private static async Task WriteAcceptedAsync(HttpContext http, IngestOutcome outcome)
    {
        http.Response.StatusCode = StatusCodes.Status202Accepted;
        http.Response.ContentType = "application/json; charset=utf-8";
        var writer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(writer))
        {
            json.WriteStartObject();
            json.WriteNumber("accepted", outcome.Accepted);
            json.WriteNumber("duplicates", outcome.Duplicates);
            json.WriteStartArray("rejected");
            foreach (var r in outcome.Rejected)
            {
                json.WriteStartObject();
                json.WriteNumber("index", r.Index);
                if (r.Line is { } line) { json.WriteNumber("line", line); }
                if (r.Field is null) { json.WriteNull("field"); } else { json.WriteString("field", r.Field); }
                json.WriteString("error", r.Error);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        await http.Response.Body.WriteAsync(writer.WrittenMemory, http.RequestAborted).ConfigureAwait(false);
    }
}

/// <summary>The 202 answer, for the OpenAPI document.</summary>
public sealed record IngestResponse(int Accepted, int Duplicates, IReadOnlyList<IngestRejection> Rejected);
