using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Pull;

/// <summary>
/// An incremental pull as a stream source (<c>postgres_pull</c>, <c>salesforce</c> with sinks): pages changed since the
/// watermark minus the overlap, records already handed on skipped (by id and stamp, <see cref="PullWatermark"/>), each
/// page a batch at the next position. A page is recorded with its watermark before it is handed on
/// (<see cref="PulledPages"/>), so a restart hands on exactly the same rows at the same positions and every sink ends
/// with each record version once. On a worker of a cluster each page is recorded only while the pull's lease is still
/// this worker's (<see cref="IPullFence"/>, checked in the same transaction). Between pulls it waits <c>poll_interval</c>; a source system that is down is tried
/// again then; what waiting does not cure (<see cref="FatalException"/>) ends the run.
/// </summary>
public sealed class PullStreamSource : IStreamSource
{
    private readonly IEngineServices _services;
    private readonly PullStreamOptions _options;
    private readonly IIncrementalExtractor _extractor;
    private readonly PulledPages _pages;
    private readonly TableSchema _schema;
    private readonly ILogger _log;
    private readonly IPullFence? _fence;
    private volatile bool _caughtUp;
    private bool _pullFailed;

    public PullStreamSource(IEngineServices services, string recipe, string kind, string pipeline, PullStreamOptions options, IIncrementalExtractor extractor)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _options = options;
        _extractor = extractor;
        LetterSource = $"{kind}:{recipe}/{pipeline}";
        _pages = new PulledPages(services.Metadata, LetterSource);
        _schema = PulledRows.Schema(options.Table, options.Columns);
        _log = services.Logging.CreateLogger("Sluice.Pull");
        _fence = IPullFence.Of(services);
    }

    /// <summary>Dead-letter source of refused records (and the key of the pull's pages): <c>&lt;kind&gt;:&lt;recipe&gt;/&lt;pipeline&gt;</c>.</summary>
    public string LetterSource { get; }

    public bool CaughtUp => _caughtUp;

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        var (position, watermark, pages) = _pages.Load(resumeAfter);
        position = Math.Max(position, resumeAfter ?? 0);
        foreach (var page in pages)
        {
            // Handed on before a stop: the same rows at the same position (a sink that committed it skips it).
            position = Math.Max(position, page.Position);
            watermark = page.Watermark;
            yield return new RecordBatch(PulledRows.ToBatch(_schema, page.Records).Rows, page.Position);
        }

        while (!ct.IsCancellationRequested)
        {
            long handed = 0, skipped = 0, refused = 0;
            _pullFailed = false;
            var reading = _extractor.ReadSinceAsync(watermark.Since(_options.Overlap), ct).GetAsyncEnumerator(ct);
            try
            {
                while (await NextAsync(reading, ct).ConfigureAwait(false) is { } records)
                {
                    var fresh = records.Where(r => !watermark.Landed(r.Id, r.Stamp)).ToList();
                    skipped += records.Count - fresh.Count;
                    if (fresh.Count == 0) { continue; }
                    watermark = watermark.Advance(fresh.Select(r => (r.Id, r.Stamp)), _options.Overlap);
                    var (rows, bad) = PulledRows.ToBatch(_schema, fresh);
                    var page = new PulledPage(++position, watermark, fresh);
                    _pages.Record(page, _services.DeadLetters, LetterSource, bad, _fence);
                    handed += rows.Count;
                    refused += bad.Count;
                    yield return new RecordBatch(rows, page.Position);
                }
            }
            finally
            {
                await reading.DisposeAsync().ConfigureAwait(false);
            }

            if (handed > 0 || refused > 0 || skipped > 0)
            {
                PullStreamLog.Pulled(_log, _extractor.Describe, handed, refused, skipped, watermark.High);
            }

            if (!_caughtUp && !_pullFailed)
            {
                // Everything changed up to now is handed on (what `run --once` waits for): an empty batch says so.
                _caughtUp = true;
                yield return new RecordBatch([], position);
            }

            try
            {
                await Task.Delay(_options.PollInterval, _services.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                yield break;
            }
        }
    }

    /// <summary>The next page, or null at the end of this pull; a failure that waiting may cure ends the pull early (tried again at the next poll).</summary>
    private async Task<IReadOnlyList<PulledRecord>?> NextAsync(IAsyncEnumerator<IReadOnlyList<PulledRecord>> reading, CancellationToken ct)
    {
        try
        {
            return await reading.MoveNextAsync().ConfigureAwait(false) ? reading.Current : null;
        }
        catch (Exception e) when (e is not FatalException && !ct.IsCancellationRequested && e is SluiceException or HttpRequestException or IOException or Npgsql.NpgsqlException or TimeoutException)
        {
            PullStreamLog.Failed(_log, _extractor.Describe, e.Message, _options.PollInterval);
            _pullFailed = true;
            return null;
        }
    }

    public Task AcknowledgeAsync(long position, CancellationToken ct)
    {
        _pages.Acknowledge(position);
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync() => _extractor.DisposeAsync();
}

internal static partial class PullStreamLog
{
    [LoggerMessage(42000, LogLevel.Information, "{Source}: {Rows} rows handed on, {Refused} refused (dead letters), {Skipped} handed on before; watermark {High:o}")]
    public static partial void Pulled(ILogger logger, string source, long rows, long refused, long skipped, DateTime? high);

    [LoggerMessage(42001, LogLevel.Warning, "{Source}: pull failed ({Reason}); trying again in {Interval}")]
    public static partial void Failed(ILogger logger, string source, string reason, TimeSpan interval);
}
