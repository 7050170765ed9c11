using System.Diagnostics;
using System.Text.Json;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;

namespace Sluice.Recipes.Reminders;

/// <summary>A reminder the rule found due, as the outbox records it.</summary>
public sealed record DueReminder(
    string Key, string Rule, string ClientKey, string CaseId, int Occurrence, DateTime ClosureAt, DateTime DueAt,
    string? ClientId, string AttorneyEmail);

/// <summary>A reminder as a client may see it (no address, no keys).</summary>
public sealed record ReminderState(string Rule, string CaseId, int Occurrence, DateTime ClosureAt, DateTime DueAt, string Status, DateTime UpdatedAt, DateTime? SentAt);

/// <summary>An outcome to append to the <c>attorney_reminder</c> log.</summary>
public sealed record ReminderOutcome(
    string Key, string Rule, string ClientKey, string CaseId, int Occurrence, DateTime ClosureAt, DateTime DueAt,
    string Status, DateTime RecordedAt, int Attempts, string MessageId, string? Detail);

/// <summary>
/// Send-once bookkeeping, in the metadata store (SQLite, shared by every process on the data folder; a cluster's shared
/// store in Postgres, which every worker reaches, where each step runs under the job run's lease). A reminder's
/// life: <c>pending</c> (the intent, recorded before anything is sent) -> claimed by one run -> <c>sending</c> (written
/// durably once the SMTP server accepted the recipient, before the message is transmitted) -> <c>sent</c>.
/// Every transition is a conditional update on the claiming run's id, so two runs never both send one reminder.
/// A <c>sending</c> row whose run died is <c>unconfirmed</c>: the server may have accepted the message, so it is not
/// sent again automatically (that would be a second mail); it goes to the dead-letter store, and a replay sends it
/// again with the same Message-ID. Transient failures return the row to <c>pending</c> for the next run; permanent
/// ones make it <c>failed</c>, with the server's answer in a dead letter. <c>withdrawn</c>: due once, no longer due.
/// </summary>
public sealed class ReminderOutbox
{
    public const string Pending = "pending";
    public const string Requeued = "requeued";
    public const string Sending = "sending";
    public const string Sent = "sent";
    public const string Failed = "failed";
    public const string Unconfirmed = "unconfirmed";
    public const string Withdrawn = "withdrawn";

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS reminder_outbox (
            recipe TEXT NOT NULL, reminder_key TEXT NOT NULL, rule TEXT NOT NULL, client_key TEXT NOT NULL,
            case_id TEXT NOT NULL, occurrence INTEGER NOT NULL, closure_at TEXT NOT NULL, due_at TEXT NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, claim TEXT NULL, claim_pid INTEGER NULL,
            claimed_until TEXT NULL, message_id TEXT NOT NULL, detail TEXT NULL, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, sent_at TEXT NULL, published_status TEXT NULL,
            PRIMARY KEY (recipe, reminder_key));
        CREATE INDEX IF NOT EXISTS ix_reminder_outbox_status ON reminder_outbox(recipe, rule, status);
        """,
        "CREATE INDEX IF NOT EXISTS ix_reminder_outbox_client ON reminder_outbox(recipe, client_key, due_at);",
    ];

    private static readonly string[] IntentParameters = ["$r", "$k", "$u", "$c", "$cid", "$o", "$cl", "$due", "$s", "$m", "$t"];

    private readonly MetadataStore _store;
    private readonly DeadLetterStore _letters;
    private readonly TimeProvider _time;
    private readonly string _recipe;
    private readonly string _rule;

    public ReminderOutbox(MetadataStore store, DeadLetterStore letters, TimeProvider time, string recipe, string rule)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _letters = letters;
        _time = time;
        _recipe = recipe;
        _rule = rule;
        store.Migrate("reminders", Migrations);
    }

    /// <summary>Dead-letter source of this rule's deliveries: <c>mail:&lt;recipe&gt;/&lt;rule&gt;</c>.</summary>
    public string LetterSource => $"mail:{_recipe}/{_rule}";

    public static string MessageId(string recipe, string key) => $"{key}@{recipe}.sluice";

    /// <summary><c>sending</c> rows whose run is gone (its process died, or its claim expired): they become <c>unconfirmed</c>, with a dead letter.</summary>
    public int RecoverAbandoned()
    {
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        var abandoned = new List<(string Key, string Claim, string CaseId, long Occurrence, string DueAt)>();
        using (var cmd = c.Command(
            "SELECT reminder_key, claim, claim_pid, claimed_until, case_id, occurrence, due_at FROM reminder_outbox WHERE recipe = $r AND rule = $u AND status = $s",
            null, ("$r", _recipe), ("$u", _rule), ("$s", Sending)))
        using (var reader = cmd.ExecuteReader())
        {
            while (reader.Read())
            {
                if (!ClaimLive(reader.IsDBNull(2) ? null : (int)reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetString(3), now))
                {
                    abandoned.Add((reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1), reader.GetString(4), reader.GetInt64(5), reader.GetString(6)));
                }
            }
        }

        var count = 0;
        foreach (var a in abandoned)
        {
            const string reason = "delivery unconfirmed: the process stopped after the SMTP server accepted the recipient and before it recorded the server's answer, so the mail may or may not have been delivered; it is not sent again automatically (that could be a second mail). Check the recipient's mailbox for the Message-ID; 'sluice dlq replay' sends it again with the same Message-ID.";
            using var tx = c.BeginTransaction();
            if (c.Execute(
                "UPDATE reminder_outbox SET status = $n, claim = NULL, claim_pid = NULL, claimed_until = NULL, detail = $d, updated_at = $t WHERE recipe = $r AND reminder_key = $k AND status = $s AND claim IS NOT DISTINCT FROM $c",
                tx, ("$n", Unconfirmed), ("$d", "process stopped between sending and recording"), ("$t", now.Iso()), ("$r", _recipe), ("$k", a.Key), ("$s", Sending), ("$c", a.Claim.Length == 0 ? null : a.Claim)) == 1)
            {
                _letters.Add(c, tx, LetterSource, Position(a.Key, a.CaseId, a.Occurrence), reason, Payload(a.Key, a.CaseId, a.Occurrence, a.DueAt), $"{LetterSource}:{a.Key}:{Unconfirmed}");
                count++;
            }

            tx.Commit();
        }

        return count;
    }

    /// <summary>Records the intent for every due reminder not seen before; a withdrawn one that is due again becomes pending.</summary>
    public void RecordIntents(IReadOnlyList<DueReminder> due)
    {
        ArgumentNullException.ThrowIfNull(due);
        var now = _time.GetUtcNow().Iso();
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        using var cmd = c.Command(
            "INSERT INTO reminder_outbox(recipe, reminder_key, rule, client_key, case_id, occurrence, closure_at, due_at, status, message_id, created_at, updated_at) " +
            "VALUES ($r, $k, $u, $c, $cid, $o, $cl, $due, $s, $m, $t, $t) " +
            "ON CONFLICT(recipe, reminder_key) DO UPDATE SET closure_at = excluded.closure_at, due_at = excluded.due_at, updated_at = excluded.updated_at, " +
            "status = CASE WHEN reminder_outbox.status = 'withdrawn' THEN 'pending' ELSE reminder_outbox.status END, detail = CASE WHEN reminder_outbox.status = 'withdrawn' THEN NULL ELSE reminder_outbox.detail END " +
            "WHERE reminder_outbox.status IN ('withdrawn', 'pending', 'requeued')", tx, IntentParameters.Select(n => (n, (object?)null)).ToArray());
        var p = IntentParameters.ToDictionary(n => n, n => Parameter(cmd, n));
        p["$r"].Value = _recipe;
        p["$s"].Value = Pending;
        p["$t"].Value = now;
        foreach (var d in due)
        {
            p["$k"].Value = d.Key;
            p["$u"].Value = d.Rule;
            p["$c"].Value = d.ClientKey;
            p["$cid"].Value = d.CaseId;
            p["$o"].Value = d.Occurrence;
            p["$cl"].Value = Iso(d.ClosureAt);
            p["$due"].Value = Iso(d.DueAt);
            p["$m"].Value = MessageId(_recipe, d.Key);
            cmd.ExecuteNonQuery();
        }

        tx.Commit();
    }

    /// <summary>Pending reminders due at or before <paramref name="asOf"/> that the rule no longer finds due (a withdrawal or a purchase came in first): withdrawn.</summary>
    public int WithdrawStale(IReadOnlySet<string> due, DateTimeOffset asOf)
    {
        ArgumentNullException.ThrowIfNull(due);
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        var stale = new List<string>();
        using (var cmd = c.Command(
            "SELECT reminder_key, claim_pid, claimed_until, claim FROM reminder_outbox WHERE recipe = $r AND rule = $u AND status IN ('pending', 'requeued') AND due_at <= $a",
            tx, ("$r", _recipe), ("$u", _rule), ("$a", asOf.Iso())))
        using (var reader = cmd.ExecuteReader())
        {
            while (reader.Read())
            {
                var claimed = !reader.IsDBNull(3) && ClaimLive(reader.IsDBNull(1) ? null : (int)reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), now);
                if (!due.Contains(reader.GetString(0)) && !claimed) { stale.Add(reader.GetString(0)); }
            }
        }

        foreach (var key in stale)
        {
            c.Execute(
                "UPDATE reminder_outbox SET status = $s, claim = NULL, claim_pid = NULL, claimed_until = NULL, detail = $d, updated_at = $t WHERE recipe = $r AND reminder_key = $k",
                tx, ("$s", Withdrawn), ("$d", "no longer due: the latest likely-to-repeat signal before the due time withdrew it, or an additional purchase cancelled it"),
                ("$t", now.Iso()), ("$r", _recipe), ("$k", key));
        }

        tx.Commit();
        return stale.Count;
    }

    /// <summary>Claims the given reminders for a run when they are pending and nobody live holds them. Returns the claimed keys.</summary>
    public IReadOnlyList<string> Claim(IEnumerable<string> keys, string run, TimeSpan lease)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var now = _time.GetUtcNow();
        var claimed = new List<string>();
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        using var read = c.Command(
            "SELECT status, claim, claim_pid, claimed_until FROM reminder_outbox WHERE recipe = $r AND reminder_key = $k", tx, ("$r", _recipe), ("$k", null));
        using var write = c.Command(
            "UPDATE reminder_outbox SET claim = $run, claim_pid = $pid, claimed_until = $until WHERE recipe = $r AND reminder_key = $k AND claim IS NOT DISTINCT FROM $old AND status IN ('pending', 'requeued')",
            tx, ("$run", run), ("$pid", Environment.ProcessId), ("$until", (now + lease).Iso()), ("$r", _recipe), ("$k", null), ("$old", null));
        foreach (var key in keys)
        {
            Parameter(read, "$k").Value = key;
            string? old;
            using (var reader = read.ExecuteReader())
            {
                if (!reader.Read()) { continue; }
                var status = reader.GetString(0);
                if (status is not (Pending or Requeued)) { continue; }
                old = reader.IsDBNull(1) ? null : reader.GetString(1);
                if (old is not null && ClaimLive(reader.IsDBNull(2) ? null : (int)reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetString(3), now)) { continue; }
            }

            Parameter(write, "$k").Value = key;
            Parameter(write, "$old").Value = (object?)old ?? DBNull.Value;
            if (write.ExecuteNonQuery() == 1) { claimed.Add(key); }
        }

        tx.Commit();
        Core.CrashPoint.Reach("reminder.claimed");
        return claimed;
    }

    /// <summary>pending -> sending, only while the run still holds the claim. Written before the message is transmitted.</summary>
    public bool BeginSend(string key, string run)
    {
        using var c = _store.Connect();
        return c.Execute(
            "UPDATE reminder_outbox SET status = $s, attempts = attempts + 1, updated_at = $t WHERE recipe = $r AND reminder_key = $k AND claim = $run AND status IN ('pending', 'requeued')",
            null, ("$s", Sending), ("$t", _time.GetUtcNow().Iso()), ("$r", _recipe), ("$k", key), ("$run", run)) == 1;
    }

    public void MarkSent(string key, string run, string detail)
    {
        Core.CrashPoint.Reach("reminder.sent");
        var now = _time.GetUtcNow().Iso();
        using var c = _store.Connect();
        // Not fsynced on its own: the next durable commit (the next message's "sending") carries it to disk. A power
        // cut before that leaves the row "sending", i.e. unconfirmed, never a second mail; one fsync per mail, not two.
        if (c is Microsoft.Data.Sqlite.SqliteConnection) { c.Execute("PRAGMA synchronous=NORMAL"); }
        c.Execute(
            "UPDATE reminder_outbox SET status = $s, sent_at = $t, updated_at = $t, detail = $d, claim = NULL, claim_pid = NULL, claimed_until = NULL WHERE recipe = $r AND reminder_key = $k AND claim = $run AND status = 'sending'",
            null, ("$s", Sent), ("$t", now), ("$d", detail), ("$r", _recipe), ("$k", key), ("$run", run));
    }

    /// <summary>A permanent failure (<c>failed</c>) or an in-doubt one (<c>unconfirmed</c>): recorded with a dead letter holding the reason.</summary>
    public void MarkDead(DueReminder reminder, string run, string status, string reason)
    {
        ArgumentNullException.ThrowIfNull(reminder);
        var now = _time.GetUtcNow().Iso();
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        if (c.Execute(
            "UPDATE reminder_outbox SET status = $s, updated_at = $t, detail = $d, claim = NULL, claim_pid = NULL, claimed_until = NULL, " +
            "attempts = CASE WHEN status = 'sending' THEN attempts ELSE attempts + 1 END WHERE recipe = $r AND reminder_key = $k AND claim = $run",
            tx, ("$s", status), ("$t", now), ("$d", reason), ("$r", _recipe), ("$k", reminder.Key), ("$run", run)) == 1)
        {
            _letters.Add(c, tx, LetterSource, Position(reminder.Key, reminder.CaseId, reminder.Occurrence), reason,
                Payload(reminder.Key, reminder.CaseId, reminder.Occurrence, Iso(reminder.DueAt)), $"{LetterSource}:{reminder.Key}:{status}");
        }

        tx.Commit();
    }

    /// <summary>A transient failure before the server had the message: back to pending for the next run.</summary>
    public void Release(string key, string run, string? reason, bool attempted)
    {
        using var c = _store.Connect();
        c.Execute(
            "UPDATE reminder_outbox SET status = CASE WHEN status = 'sending' THEN 'pending' ELSE status END, claim = NULL, claim_pid = NULL, claimed_until = NULL, detail = coalesce($d, detail), " +
            "attempts = attempts + $a, updated_at = $t WHERE recipe = $r AND reminder_key = $k AND claim = $run",
            null, ("$d", reason), ("$a", attempted ? 0 : 1), ("$t", _time.GetUtcNow().Iso()), ("$r", _recipe), ("$k", key), ("$run", run));
    }

    /// <summary>An operator's replay: a failed or unconfirmed reminder is sent again by the next run (if the rule still finds it due).</summary>
    public string? Requeue(string key)
    {
        using var c = _store.Connect();
        var n = c.Execute(
            "UPDATE reminder_outbox SET status = $s, detail = 'requeued by dlq replay', updated_at = $t WHERE recipe = $r AND reminder_key = $k AND status IN ('failed', 'unconfirmed')",
            null, ("$s", Requeued), ("$t", _time.GetUtcNow().Iso()), ("$r", _recipe), ("$k", key));
        return n == 1 ? null : $"reminder {key} is not failed or unconfirmed (any more)";
    }

    /// <summary>Outcomes not yet in the <c>attorney_reminder</c> log.</summary>
    public IReadOnlyList<ReminderOutcome> Unpublished()
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            "SELECT reminder_key, rule, client_key, case_id, occurrence, closure_at, due_at, status, updated_at, attempts, message_id, detail FROM reminder_outbox " +
            "WHERE recipe = $r AND status IN ('sent', 'failed', 'unconfirmed', 'withdrawn', 'requeued') AND published_status IS DISTINCT FROM status ORDER BY updated_at",
            null, ("$r", _recipe));
        using var reader = cmd.ExecuteReader();
        var list = new List<ReminderOutcome>();
        while (reader.Read())
        {
            list.Add(new ReminderOutcome(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), (int)reader.GetInt64(4),
                ParseUtc(reader.GetString(5)), ParseUtc(reader.GetString(6)), reader.GetString(7), ParseUtc(reader.GetString(8)),
                (int)reader.GetInt64(9), reader.GetString(10), reader.IsDBNull(11) ? null : reader.GetString(11)));
        }

        return list;
    }

    /// <summary>Marks outcomes as in the log, inside the caller's transaction (the lake commit that adds them).</summary>
    public void MarkPublished(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, IEnumerable<ReminderOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        foreach (var o in outcomes)
        {
            c.Execute("UPDATE reminder_outbox SET published_status = $s WHERE recipe = $r AND reminder_key = $k AND status = $s",
                tx, ("$s", o.Status), ("$r", _recipe), ("$k", o.Key));
        }
    }

    public void MarkPublished(IEnumerable<ReminderOutcome> outcomes)
    {
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        MarkPublished(c, tx, outcomes);
        tx.Commit();
    }

    /// <summary>One client's reminders of a recipe (every rule), newest due first: the state the outbox knows now.</summary>
    public static IReadOnlyList<ReminderState> OfClient(MetadataStore store, string recipe, string clientKey, int limit)
    {
        ArgumentNullException.ThrowIfNull(store);
        store.Migrate("reminders", Migrations);
        using var c = store.Connect();
        using var cmd = c.Command(
            "SELECT rule, case_id, occurrence, closure_at, due_at, status, updated_at, sent_at FROM reminder_outbox WHERE recipe = $r AND client_key = $c ORDER BY due_at DESC, case_id LIMIT $l",
            null, ("$r", recipe), ("$c", clientKey), ("$l", limit));
        using var reader = cmd.ExecuteReader();
        var list = new List<ReminderState>();
        while (reader.Read())
        {
            list.Add(new ReminderState(reader.GetString(0), reader.GetString(1), (int)reader.GetInt64(2), ParseUtc(reader.GetString(3)), ParseUtc(reader.GetString(4)),
                reader.GetString(5), ParseUtc(reader.GetString(6)), reader.IsDBNull(7) ? null : ParseUtc(reader.GetString(7))));
        }

        return list;
    }

    /// <summary>Counts by status, for messages and tests.</summary>
    public IReadOnlyDictionary<string, long> Counts()
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT status, count(*) FROM reminder_outbox WHERE recipe = $r AND rule = $u GROUP BY status", null, ("$r", _recipe), ("$u", _rule));
        using var reader = cmd.ExecuteReader();
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.Read()) { counts[reader.GetString(0)] = reader.GetInt64(1); }
        return counts;
    }

    public static string Iso(DateTime utc) => new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)).Iso();

    /// <summary>A parameter of a command made by <c>Command</c>, by its SQL name (Npgsql's drop the <c>$</c>).</summary>
    private static System.Data.Common.DbParameter Parameter(System.Data.Common.DbCommand cmd, string name) =>
        cmd.Parameters.Contains(name) ? cmd.Parameters[name] : cmd.Parameters[name.TrimStart('$')];

    private static DateTime ParseUtc(string text) => SqliteExtensions.ParseIso(text).UtcDateTime;

    private static string Position(string key, string caseId, long occurrence) => $"reminder {key} (case {caseId}, reminder {occurrence + 1})";

    private static string Payload(string key, string caseId, long occurrence, string dueAt) =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["reminder_key"] = key, ["case_id"] = caseId, ["occurrence"] = occurrence, ["due_at"] = dueAt });

    /// <summary>
    /// A claim is live while its lease runs and its process exists (a SIGKILLed run's claims are free at once). On a
    /// cluster's shared store no other run's claim is: every run of the job holds the job's lease, and the job checks it
    /// (<see cref="Sluice.Jobs.JobFence"/>) around each step that judges claims, so the run asking is the only live one; a
    /// process id names no process of another machine.
    /// </summary>
    private bool ClaimLive(int? pid, string? until, DateTimeOffset now)
    {
        if (_store.Shared is not null)
        {
            return false;
        }

        if (until is null || SqliteExtensions.ParseIso(until) < now)
        {
            return false;
        }

        if (pid is null || pid == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            using var p = Process.GetProcessById(pid.Value);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
