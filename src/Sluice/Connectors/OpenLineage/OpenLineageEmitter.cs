using System.Net;
using System.Net.Http.Headers;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Timeout;

namespace Sluice.Connectors.OpenLineage;

/// <summary>
/// Sends OpenLineage run events for job and model runs. A run only enqueues (never waits, never fails because of
/// lineage): one background sender posts the events in order, retries a few times, then logs a warning and drops.
/// </summary>
public sealed class OpenLineageEmitter : IDisposable
{
    private readonly OpenLineageOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly HttpClient _http;
    private readonly Channel<Pending> _queue;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sender;
    private int _disposed;

    public OpenLineageEmitter(OpenLineageOptions options, TimeProvider time, ILoggerFactory logging, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logging);
        _options = options;
        _time = time;
        _log = logging.CreateLogger("Sluice.OpenLineage");
        // Polly's timeout bounds each attempt; HttpClient's own would cut the retries short.
        _http = new HttpClient(handler ?? new SocketsHttpHandler(), disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(options.QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _pipeline = BuildPipeline();
        OpenLineageLog.Enabled(_log, options.Endpoint.ToString(), options.Namespace);
        _sender = Task.Run(SendAllAsync);
    }

    public string Namespace => _options.Namespace;

    /// <summary>The namespace of the datasets of a store, e.g. <c>sluice/duckdb</c> or <c>sluice/lake</c>.</summary>
    public string DatasetNamespace(string store) => $"{_options.Namespace}/{store}";

    /// <summary>Sends the START event of a new run and returns it (its id and datasets, for <see cref="End"/>).</summary>
    public LineageRun Start(string job, IReadOnlyList<LineageDataset> inputs, IReadOnlyList<LineageDataset> outputs)
    {
        var run = new LineageRun(Guid.NewGuid(), job, inputs, outputs);
        Enqueue(run, null, null);
        return run;
    }

    /// <summary>Sends the COMPLETE, FAIL (with the error's message) or ABORT event of a run.</summary>
    public void End(LineageRun run, LineageEnd end, string? error = null) => Enqueue(run, end, end == LineageEnd.Fail ? error ?? "failed" : null);

    private void Enqueue(LineageRun run, LineageEnd? end, string? error)
    {
        var body = RunEventJson.Write(_options.Namespace, run, end, error, _time.GetUtcNow());
        if (!_queue.Writer.TryWrite(new Pending(run, end, body)))
        {
            OpenLineageLog.QueueFull(_log, _options.QueueCapacity, _options.Endpoint.ToString(), RunEventJson.EventType(end), run.Job);
        }
    }

    private async Task SendAllAsync()
    {
        try
        {
            await foreach (var e in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                await SendAsync(e).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped with events still queued: Dispose reports how many.
        }
    }

    private async Task SendAsync(Pending e)
    {
        var attempts = 0;
        string reason;
        try
        {
            using var response = await _pipeline.ExecuteAsync(
                async ct =>
                {
                    attempts++;
                    using var content = new ByteArrayContent(e.Body);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    return await _http.PostAsync(_options.Endpoint, content, ct).ConfigureAwait(false);
                },
                _stop.Token).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            reason = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            // Whatever goes wrong with one event (refused, timed out, unexpected), it is logged and dropped: lineage
            // must never stop the sender, and with it every later event.
            reason = ex.Message;
        }

        OpenLineageLog.Dropped(_log, RunEventJson.EventType(e.End), e.Run.Job, e.Run.Id, attempts, _options.Endpoint.ToString(), reason);
    }

    private ResiliencePipeline<HttpResponseMessage> BuildPipeline() =>
        Http.TransientHttpRetry.Pipeline(_time, _options.Retries, _options.RetryDelay, _options.Timeout, args =>
        {
            var why = args.Outcome.Exception?.Message ?? $"HTTP {(int?)args.Outcome.Result?.StatusCode}";
            OpenLineageLog.Retrying(_log, args.AttemptNumber + 1, why, (long)args.RetryDelay.TotalMilliseconds);
            return ValueTask.CompletedTask;
        });

    /// <summary>Sends what is queued (waiting at most <see cref="OpenLineageOptions.DrainWait"/>), then stops.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        if (!_sender.Wait(_options.DrainWait))
        {
            _stop.Cancel();
            _sender.Wait(_options.Timeout);
            if (_queue.Reader.Count > 0)
            {
                OpenLineageLog.Abandoned(_log, _queue.Reader.Count, _options.Endpoint.ToString());
            }
        }

        _stop.Dispose();
        _http.Dispose();
    }

    private sealed record Pending(LineageRun Run, LineageEnd? End, byte[] Body);
}
