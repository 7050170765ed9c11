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
/// this worker's (<see cref="IPullFence"/>, checked in the same transaction); with a sink that appends (the lake,
/// <see cref="CarrySequences"/>) each row there carries its number in the pull as <c>_offset</c> and each page the
/// cursor's log, so that sink skips the rows of a page the previous holder committed when the next hands it on again. Between pulls it waits <c>poll_interval</c>; a source system that is down is tried
/// again then; what waiting does not cure (<see cref="FatalException"/>) ends the run.
/// </summary>
public sealed class PullStreamSource : IStreamSource, ILogSequencedSource
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
    private bool _sequenced;

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

    /// <summary>
    /// A sink of the pipeline skips replays by log sequences (the lake sink): on a worker of a cluster, where a page the
    /// previous holder may have committed is handed on again by the next (and one paused past its lease may still be
    /// committing it), each page's rows get their numbers (<see cref="Page"/>). In a single process a page comes again
    /// only at its own position, which the sinks' checkpoints skip.
    /// </summary>
    public void CarrySequences() => _sequenced = _fence is not null;

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        var cursor = _pages.Load(resumeAfter);
        var (position, watermark, lastRow) = (Math.Max(cursor.Position, resumeAfter ?? 0), cursor.Watermark, cursor.LastRow);
        foreach (var page in cursor.Pages)
        {
            // Handed on before a stop: the same rows at the same position (a sink that committed it skips it).
            position = Math.Max(position, page.Position);
            watermark = page.Watermark;
            lastRow = Math.Max(lastRow, page.LastRow);
            var (again, _, kept) = PulledRows.ToBatch(_schema, page.Records);
            yield return Page(again, kept, page, cursor.Log);
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
                    var (rows, bad, kept) = PulledRows.ToBatch(_schema, fresh);
                    lastRow += fresh.Count;
                    var page = new PulledPage(++position, watermark, fresh, lastRow);
                    _pages.Record(page, _services.DeadLetters, LetterSource, bad, _fence);
                    handed += rows.Count;
                    refused += bad.Count;
                    yield return Page(rows, kept, page, cursor.Log);
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

    /// <summary>
    /// A page's rows as its batch at its position. Sequenced (<see cref="CarrySequences"/>), each record of the page has
    /// its number in the cursor's log, up to the page's last (<see cref="PulledPage.LastRow"/>), the same on whichever
    /// worker hands the page on: each row carries its record's as <c>_offset</c>, and the batch the page's whole run, its
    /// refused records' numbers too (they went to the dead letters with the page), so the lake's record of it joins up.
    /// </summary>
    private RecordBatch Page(ColumnBatch rows, IReadOnlyList<int> kept, PulledPage page, string log)
    {
        if (!_sequenced || rows.Count == 0) { return new RecordBatch(rows, page.Position); }
        var first = page.LastRow - page.Records.Count + 1;
        var offsets = new long?[rows.Count];
        for (var i = 0; i < rows.Count; i++) { offsets[i] = first + kept[i]; }
        var numbered = new ColumnBatch(new TableSchema(rows.Schema.Table, [.. rows.Schema.Fields, new FieldSpec(Http.Ingest.StreamShape.OffsetColumn, FieldType.Integer, false)]), [.. rows.Columns, offsets], rows.Count);
        return new RecordBatch(numbered, page.Position) { Log = new LogSequences(log, [new SequenceRange(first, page.LastRow)]) };
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
