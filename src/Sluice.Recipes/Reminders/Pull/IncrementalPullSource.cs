using Sluice.Connectors.Pull;
using Microsoft.Extensions.Logging;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;

namespace Sluice.Recipes.Reminders.Pull;

/// <summary>
/// An incremental pull that lands attorney events itself: reads pages changed since the watermark (minus the overlap),
/// skips records it already landed, maps and protects the rest, and commits each page's rows, its refused records (as
/// dead letters) and the new watermark in one transaction of the store. A crash mid-pull loses nothing and repeats
/// nothing: the next pull starts from the last committed watermark. Between pulls it waits <c>poll_interval</c>;
/// a source system that is down is retried at the next interval; what retrying cannot cure (a refused login, a missing
/// table: <see cref="Core.FatalException"/>) ends the run.
/// </summary>
public sealed class IncrementalPullSource : IRunnableSource, IDeadLetterReplayer
{
    private readonly IEngineServices _services;
    private readonly PullOptions _options;
    private readonly IIncrementalExtractor _extractor;
    private readonly IReminderWarehouse _warehouse;
    private readonly FieldProtector _protector;
    private readonly EventNormaliser _normaliser;
    private readonly ILogger _log;
    private readonly string _checkpointKey;
    private readonly IPullFence? _fence;
    private bool _initialised;

    public IncrementalPullSource(IEngineServices services, string recipe, string kind, string pipeline, PullOptions options, IIncrementalExtractor extractor)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _options = options;
        _extractor = extractor;
        _log = services.Logging.CreateLogger("Sluice.Pull");
        _warehouse = ReminderWarehouses.Create(services, options.Store, recipe);
        _protector = ReminderKeys.Load(options.Store, services.Data);
        _normaliser = new EventNormaliser(options.Mapping, _protector, options.Store.ClientId);
        LetterSource = $"{kind}:{recipe}/{pipeline}";
        _checkpointKey = $"pull:{recipe}/{pipeline}";
        _fence = IPullFence.Of(services);
    }

    /// <summary>Dead-letter source of refused records: <c>&lt;kind&gt;:&lt;recipe&gt;/&lt;pipeline&gt;</c>.</summary>
    public string LetterSource { get; }

    public IReminderWarehouse Warehouse => _warehouse;

    /// <summary>Pulls everything changed since the watermark; returns the pages that landed something.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        if (!_initialised)
        {
            await _warehouse.InitialiseAsync(ct).ConfigureAwait(false);
            _initialised = true;
        }

        var watermark = PullWatermark.Parse(await _warehouse.ReadCheckpointAsync(_checkpointKey, ct).ConfigureAwait(false));
        var pages = 0;
        long landed = 0, skipped = 0, refused = 0;
        await foreach (var page in _extractor.ReadSinceAsync(watermark.Since(_options.Overlap), ct).ConfigureAwait(false))
        {
            var fresh = page.Where(r => !watermark.Landed(r.Id, r.Stamp)).ToList();
            skipped += page.Count - fresh.Count;
            if (fresh.Count == 0)
            {
                continue;
            }

            var receivedAt = _services.Time.GetUtcNow().UtcDateTime;
            var batch = _normaliser.Normalise(fresh.Select(r => new RawEvent(r.Json, receivedAt, Position(r))).ToList());
            watermark = watermark.Advance(fresh.Select(r => (r.Id, r.Stamp)), _options.Overlap);
            // On a worker of a cluster the page lands only under the pull's lease (PullFencedException otherwise): its
            // rows, dead letters and watermark are one transaction of the store, so the next holder goes on from it.
            await _warehouse.AppendAsync(batch, LetterSource, _checkpointKey, watermark.ToJson(), _fence, ct).ConfigureAwait(false);
            pages++;
            landed += batch.Events.Count;
            refused += batch.Rejected.Count;
        }

        if (pages > 0 || skipped > 0)
        {
            PullLog.Pulled(_log, _extractor.Describe, landed, refused, skipped, watermark.High);
        }

        return pages;
    }

    public async Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(afterLoad);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (await RunOnceAsync(ct).ConfigureAwait(false) > 0)
                {
                    await afterLoad(ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not (Core.FatalException or PullFencedException) && e is Core.SluiceException or HttpRequestException or IOException or Npgsql.NpgsqlException or TimeoutException)
            {
                // Transient (a source system down): tried again at the next interval. A FatalException ends the run.
                PullLog.Failed(_log, _extractor.Describe, e.Message, _options.PollInterval);
            }

            try
            {
                await Task.Delay(_options.PollInterval, _services.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    public bool CanReplay(DeadLetter letter) => letter?.Source == LetterSource;

    /// <summary>A refused record is mapped again under the mapping as it is now, and lands on its own when it passes.</summary>
    public async Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(letter);
        if (letter.Payload is null)
        {
            return "the letter holds no payload";
        }

        await _warehouse.InitialiseAsync(ct).ConfigureAwait(false);
        byte[] json;
        try
        {
            json = _protector.DecryptBytes(letter.Payload);
        }
        catch (Core.SluiceException e)
        {
            return $"cannot read the kept payload: {e.Message}";
        }

        var batch = _normaliser.Normalise([new RawEvent(json, _services.Time.GetUtcNow().UtcDateTime, letter.Position)]);
        if (batch.Rejected.Count > 0)
        {
            return batch.Rejected[0].Reason;
        }

        await _warehouse.AppendAsync(batch, LetterSource, $"{_checkpointKey}:replay", letter.Position, null, ct).ConfigureAwait(false);
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _extractor.DisposeAsync().ConfigureAwait(false);
        await _warehouse.DisposeAsync().ConfigureAwait(false);
        _protector.Dispose();
    }

    private static string Position(PulledRecord r) => PullWatermark.Describe(r.Id, r.Stamp);
}

internal static partial class PullLog
{
    [LoggerMessage(6101, LogLevel.Information, "{Source}: {Landed} events landed, {Refused} refused (dead letters), {Skipped} already landed; watermark {High:o}")]
    public static partial void Pulled(ILogger logger, string source, long landed, long refused, long skipped, DateTime? high);

    [LoggerMessage(6102, LogLevel.Warning, "{Source}: pull failed ({Reason}); trying again in {Interval}")]
    public static partial void Failed(ILogger logger, string source, string reason, TimeSpan interval);
}
