using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Sluice.Alerts.Notify;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Core.Status;

namespace Sluice.Alerts;

/// <summary>
/// Checks a recipe's alerts every <see cref="AlertsOptions.CheckEvery"/> on the engine's clock, keeps their states in
/// the metadata store, and sends one notice per channel when an alert fires and one when it resolves. States and
/// notices are stored before anything is sent, so a restart resends nothing already delivered and loses nothing due;
/// a notice that cannot be delivered stays pending (in order, per channel) and is tried at each check, at most
/// <see cref="AlertsOptions.MaxDeliveryRounds"/> times. The states show on the status board (<c>/readyz</c>,
/// <c>/api/status</c>, <c>sluice status</c>).
/// </summary>
public sealed class AlertMonitor : IAsyncDisposable
{
    private readonly string _recipe;
    private readonly AlertsOptions _options;
    private readonly TimeProvider _time;
    private readonly IAlertFacts _facts;
    private readonly AlertStore _store;
    private readonly AlertTracker _tracker;
    private readonly IReadOnlyList<IAlertChannel> _channels;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _checking = new(1, 1);
    private volatile IReadOnlyDictionary<string, int> _pending = new Dictionary<string, int>();

    public AlertMonitor(string recipe, AlertsOptions options, IEngineServices services, IAlertFacts? facts = null, IReadOnlyList<IAlertChannel>? channels = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        _recipe = recipe;
        _options = options;
        _time = services.Time;
        _facts = facts ?? new EngineAlertFacts(services);
        _store = new AlertStore(services.Metadata);
        _tracker = new AlertTracker(_store.Load(recipe));
        _channels = channels ?? Channels(options, services.Time);
        _log = services.Logging.CreateLogger("Sluice.Alerts");
        services.Status.AlertsOf(recipe, Views);
    }

    public IReadOnlyList<AlertRule> Rules => _options.Rules;

    public AlertStore Store => _store;

    /// <summary>Checks now, then every <see cref="AlertsOptions.CheckEvery"/> until cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        AlertLog.Watching(_log, _recipe, _options.Rules.Count, _options.CheckEvery.TotalSeconds,
            _channels.Count == 0 ? "none (states only)" : string.Join(", ", _channels.Select(c => $"{c.Name} {c.Target}")));
        using var timer = new PeriodicTimer(_options.CheckEvery, _time);
        do
        {
            await CheckAsync(ct).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
    }

    /// <summary>One round: every rule checked, changes stored with their notices, then what is pending sent.</summary>
    public async Task CheckAsync(CancellationToken ct)
    {
        await _checking.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            foreach (var rule in _options.Rules)
            {
                Check(rule, now);
            }

            await DeliverAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SqliteException or Core.Metadata.MetadataUnavailableException or IOException)
        {
            // The store is shared with every process of the data folder; a moment it cannot be written must not stop the
            // run (its failure shows in /healthz through whoever owns it): the next check tries again.
            AlertLog.StoreUnavailable(_log, _recipe, e.Message);
        }
        finally
        {
            _checking.Release();
        }
    }

    private void Check(AlertRule rule, DateTimeOffset now)
    {
        var isNew = _tracker.State(rule.Name) is null;
        Conditions.AlertCheck check;
        try
        {
            check = rule.Condition.Check(_facts, now, _tracker.WatchedSince(rule, now));
        }
        catch (Exception e) when (e is SqliteException or IOException or InvalidOperationException or SluiceException)
        {
            AlertLog.CheckFailed(_log, rule.QualifiedName, e.Message);
            return;
        }

        var change = _tracker.Observe(rule, check, now);
        if (change is null)
        {
            if (isNew) { _store.Watch(rule.Recipe, rule.Name, _tracker.State(rule.Name)!); }
            return;
        }

        _store.Record(change, _channels.Select(c => c.Name).ToList());
        if (change.Current.Firing) { AlertLog.Fired(_log, rule.QualifiedName, rule.Severity.ToString().ToLowerInvariant(), check.Message); }
        else { AlertLog.Resolved(_log, rule.QualifiedName, check.Message); }
    }

    private async Task DeliverAsync(CancellationToken ct)
    {
        var pending = _store.PendingNotices(_recipe);
        foreach (var group in pending.GroupBy(n => n.Channel, StringComparer.Ordinal))
        {
            var channel = _channels.FirstOrDefault(c => c.Name == group.Key);
            foreach (var notice in group)
            {
                var round = notice.Attempts + 1;
                if (channel is null)
                {
                    _store.Failed(notice.Id, round, $"the recipe no longer has alerts.{notice.Channel}", abandon: true);
                    continue;
                }

                try
                {
                    await channel.DeliverAsync(notice, ct).ConfigureAwait(false);
                    _store.Delivered(notice.Id, _time.GetUtcNow(), round);
                    AlertLog.Delivered(_log, $"{notice.Recipe}/{notice.Alert}", notice.Event, channel.Name, channel.Target);
                }
                catch (AlertDeliveryException e)
                {
                    var abandon = e.Permanent || round >= AlertsOptions.MaxDeliveryRounds;
                    _store.Failed(notice.Id, round, e.Message, abandon);
                    if (abandon)
                    {
                        AlertLog.Abandoned(_log, $"{notice.Recipe}/{notice.Alert}", notice.Event, channel.Name, channel.Target, round, e.Message);
                        continue;
                    }

                    AlertLog.NotDelivered(_log, $"{notice.Recipe}/{notice.Alert}", notice.Event, channel.Name, channel.Target, e.Message, round, AlertsOptions.MaxDeliveryRounds);
                    // Later notices of this channel wait: a receiver must not see a resolve before its fire.
                    break;
                }
            }
        }

        _pending = _store.PendingNotices(_recipe).GroupBy(n => n.Alert, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
    }

    /// <summary>What the status board shows: each rule's state as of the last check.</summary>
    public IReadOnlyList<AlertView> Views()
    {
        var pending = _pending;
        return _options.Rules.Select(rule =>
        {
            var state = _tracker.State(rule.Name);
            return new AlertView(
                rule.Recipe, rule.Name, rule.Condition.Kind, rule.Severity.ToString().ToLowerInvariant(), rule.Condition.Subject,
                state?.Name ?? "unchecked", (state?.Since ?? _time.GetUtcNow()).UtcDateTime, state?.Message ?? "not checked yet",
                pending.GetValueOrDefault(rule.Name));
        }).ToList();
    }

    private static List<IAlertChannel> Channels(AlertsOptions options, TimeProvider time)
    {
        var channels = new List<IAlertChannel>();
        if (options.Webhook is { } w) { channels.Add(new WebhookChannel(w, time)); }
        if (options.Email is { } m) { channels.Add(new EmailChannel(m, time)); }
        return channels;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _channels) { await c.DisposeAsync().ConfigureAwait(false); }
        _checking.Dispose();
    }
}
