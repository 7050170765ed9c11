using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Alerts;

/// <summary>
/// Alert states and the notices still to send, in the metadata store (component migration <c>alerts</c>). A change of
/// state and its notices are written in one transaction before anything is sent, so a restart neither sends a
/// still-firing alert again nor forgets a notice that was due: it sends what is pending.
/// </summary>
public sealed class AlertStore
{
    public const string Pending = "pending";
    public const string Sent = "sent";
    public const string Abandoned = "abandoned";

    /// <summary>
    /// Settled notices (sent or abandoned) kept per recipe as the history the console and tests read; older ones are
    /// deleted as new ones are recorded, so an alert that flaps for months does not grow the store without bound.
    /// Pending notices are never deleted: they are still owed.
    /// </summary>
    public const int SettledKept = 1000;

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE alert_state (
            recipe TEXT NOT NULL, alert TEXT NOT NULL, state TEXT NOT NULL, since TEXT NOT NULL, message TEXT NOT NULL,
            watched_since TEXT NOT NULL, PRIMARY KEY (recipe, alert));
        CREATE TABLE alert_notices (
            id INTEGER PRIMARY KEY AUTOINCREMENT, recipe TEXT NOT NULL, alert TEXT NOT NULL, kind TEXT NOT NULL,
            severity TEXT NOT NULL, subject TEXT NOT NULL, event TEXT NOT NULL, at TEXT NOT NULL, firing_since TEXT NULL,
            message TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NULL, sent_at TEXT NULL);
        CREATE INDEX ix_alert_notices_pending ON alert_notices(recipe, status, id);
        """,
    ];

    private readonly MetadataStore _store;

    public AlertStore(MetadataStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        store.Migrate("alerts", Migrations);
    }

    public IReadOnlyDictionary<string, AlertState> Load(string recipe)
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT alert, state, since, message, watched_since FROM alert_state WHERE recipe = $r", null, ("$r", recipe));
        using var r = cmd.ExecuteReader();
        var states = new Dictionary<string, AlertState>(StringComparer.Ordinal);
        while (r.Read())
        {
            states[r.GetString(0)] = new AlertState(r.GetString(1) == AlertStates.Firing, SqliteExtensions.ParseIso(r.GetString(2)), r.GetString(3), SqliteExtensions.ParseIso(r.GetString(4)));
        }

        return states;
    }

    /// <summary>Keeps when an alert was first checked (a new alert, found well: nothing to send).</summary>
    public void Watch(string recipe, string alert, AlertState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var c = _store.Connect();
        Upsert(c, null, recipe, alert, state, overwrite: false);
    }

    /// <summary>The new state and one pending notice per channel, at once.</summary>
    public void Record(AlertTransition change, IReadOnlyList<string> channels)
    {
        ArgumentNullException.ThrowIfNull(change);
        ArgumentNullException.ThrowIfNull(channels);
        var rule = change.Rule;
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        Upsert(c, tx, rule.Recipe, rule.Name, change.Current, overwrite: true);
        foreach (var channel in channels)
        {
            c.Execute(
                "INSERT INTO alert_notices(recipe, alert, kind, severity, subject, event, at, firing_since, message, channel, status) " +
                "VALUES ($r, $a, $k, $s, $sub, $e, $at, $fs, $m, $c, $st)",
                tx, ("$r", rule.Recipe), ("$a", rule.Name), ("$k", rule.Condition.Kind), ("$s", Severity(rule)), ("$sub", rule.Condition.Subject),
                ("$e", change.Event), ("$at", change.Current.Since.Iso()), ("$fs", change.Current.Firing ? null : change.Previous.Since.Iso()),
                ("$m", change.Current.Message), ("$c", channel), ("$st", Pending));
        }

        c.Execute(
            "DELETE FROM alert_notices WHERE recipe = $r AND status <> $p AND id <= " +
            "(SELECT id FROM alert_notices WHERE recipe = $r AND status <> $p ORDER BY id DESC LIMIT 1 OFFSET $keep)",
            tx, ("$r", rule.Recipe), ("$p", Pending), ("$keep", SettledKept));
        tx.Commit();
    }

    /// <summary>Notices of a recipe still to send, oldest first.</summary>
    public IReadOnlyList<AlertNotice> PendingNotices(string recipe)
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            "SELECT id, recipe, alert, kind, severity, subject, event, at, firing_since, message, channel, attempts FROM alert_notices " +
            "WHERE recipe = $r AND status = $p ORDER BY id", null, ("$r", recipe), ("$p", Pending));
        using var r = cmd.ExecuteReader();
        var list = new List<AlertNotice>();
        while (r.Read())
        {
            list.Add(new AlertNotice(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                SqliteExtensions.ParseIso(r.GetString(7)), r.IsDBNull(8) ? null : SqliteExtensions.ParseIso(r.GetString(8)),
                r.GetString(9), r.GetString(10), (int)r.GetInt64(11)));
        }

        return list;
    }

    /// <summary>Every notice of a recipe with its outcome (tests, the console).</summary>
    public IReadOnlyList<(AlertNotice Notice, string Status, string? Error)> Notices(string recipe)
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            "SELECT id, recipe, alert, kind, severity, subject, event, at, firing_since, message, channel, attempts, status, last_error FROM alert_notices " +
            "WHERE recipe = $r ORDER BY id", null, ("$r", recipe));
        using var r = cmd.ExecuteReader();
        var list = new List<(AlertNotice, string, string?)>();
        while (r.Read())
        {
            list.Add((new AlertNotice(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
                SqliteExtensions.ParseIso(r.GetString(7)), r.IsDBNull(8) ? null : SqliteExtensions.ParseIso(r.GetString(8)),
                r.GetString(9), r.GetString(10), (int)r.GetInt64(11)), r.GetString(12), r.IsDBNull(13) ? null : r.GetString(13)));
        }

        return list;
    }

    public void Delivered(long id, DateTimeOffset at, int attempts)
    {
        using var c = _store.Connect();
        c.Execute("UPDATE alert_notices SET status = $s, sent_at = $t, attempts = $n, last_error = NULL WHERE id = $id", null,
            ("$s", Sent), ("$t", at.Iso()), ("$n", attempts), ("$id", id));
    }

    /// <summary>A round of attempts failed: the notice stays pending, or is given up (<paramref name="abandon"/>).</summary>
    public void Failed(long id, int attempts, string error, bool abandon)
    {
        using var c = _store.Connect();
        c.Execute("UPDATE alert_notices SET status = $s, attempts = $n, last_error = $e WHERE id = $id", null,
            ("$s", abandon ? Abandoned : Pending), ("$n", attempts), ("$e", error), ("$id", id));
    }

    private static string Severity(AlertRule rule) => rule.Severity.ToString().ToLowerInvariant();

    private static void Upsert(DbConnection c, DbTransaction? tx, string recipe, string alert, AlertState state, bool overwrite) => c.Execute(
        "INSERT INTO alert_state(recipe, alert, state, since, message, watched_since) VALUES ($r, $a, $s, $since, $m, $w) ON CONFLICT(recipe, alert) DO " +
        (overwrite ? "UPDATE SET state = excluded.state, since = excluded.since, message = excluded.message" : "NOTHING"),
        tx, ("$r", recipe), ("$a", alert), ("$s", state.Name), ("$since", state.Since.Iso()), ("$m", state.Message), ("$w", state.WatchedSince.Iso()));
}
