using System.Globalization;

namespace Sluice.Recipes.Reminders;

/// <summary>The SQL engines the rule runs on: the embedded warehouse (DuckDB over the lake) or PostgreSQL.</summary>
public enum SqlDialect
{
    DuckDb,
    Postgres,
}

/// <summary>
/// The rule as one set-based query (no per-case round trips): which reminders are due at an instant and not yet
/// settled. It is both the body of the <c>vw_reminder_ready</c> view (with <c>now()</c>) and what the job runs (with
/// its <c>--now</c> instant). Only events that occurred at or before the instant count, so a replay as of a past
/// instant decides as that instant would have.
/// <list type="bullet">
/// <item>closure: the case's first closure event;</item>
/// <item>due: closure + delay (+ k x every, k &lt; times), at or before the instant;</item>
/// <item>verdict: the latest likely-source event at or before the due time (events at the same instant: a
/// withdrawal wins) must be the likely status with enough confidence;</item>
/// <item>cancelled: an additional-purchase event at or after the closure, at or before the instant;</item>
/// <item>settled: the latest outcome in <c>attorney_reminder</c> is sent, failed or unconfirmed;</item>
/// <item>the address and client are taken from the case's latest event at or before the due time.</item>
/// </list>
/// </summary>
public static class ReminderRuleSql
{
    /// <summary>Outcomes after which a reminder is never sent again by the rule (only an operator's replay re-opens it).</summary>
    public static readonly string[] Settled = ["sent", "failed", "unconfirmed"];

    /// <summary>The query; <paramref name="now"/> is a SQL expression (<c>now()</c>, or a literal from <see cref="Instant"/>).</summary>
    public static string Ready(ReminderRule rule, SqlDialect dialect, string events, string reminders, string now)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var delay = Seconds(rule.Delay);
        var every = Seconds(rule.Every);
        var occurrences = dialect == SqlDialect.DuckDb
            ? $"range(0, {rule.Times}) AS o(n)"
            : $"generate_series(0, {rule.Times - 1}) AS o(n)";
        var latest = dialect == SqlDialect.DuckDb
            ? $"SELECT reminder_key, status FROM {reminders} QUALIFY row_number() OVER (PARTITION BY reminder_key ORDER BY recorded_at DESC, status) = 1"
            : $"SELECT DISTINCT ON (reminder_key) reminder_key, status FROM {reminders} ORDER BY reminder_key, recorded_at DESC, status";
        var keep = $"coalesce(lower(trim(status)) = {Text(rule.LikelyStatus.Trim().ToLowerInvariant())} AND confidence_score >= {rule.MinConfidence.ToString("R", CultureInfo.InvariantCulture)}, false)";
        // Only the cases with a reminder due are looked at closely: closures are found with one scan, and the events of
        // the (few) due cases with a second scan probing a small hash table. Everything after that is small.
        var head = $"""
            WITH closure AS (
                SELECT client_key, case_id, min(occurred_at) AS closure_at
                FROM {events}
                WHERE occurred_at <= {now} AND source IN ({List(rule.ClosureSources)}) AND event_type = {Text(rule.ClosureType)}
                GROUP BY client_key, case_id
            ),
            ready AS (
                SELECT * FROM (
                    SELECT c.client_key, c.case_id, c.closure_at, o.n AS occurrence,
                           c.closure_at + INTERVAL '{delay} seconds' + o.n * INTERVAL '{every} seconds' AS due_at
                    FROM closure c CROSS JOIN {occurrences}
                ) d WHERE due_at <= {now}
            ),
            due_case AS (
                SELECT DISTINCT client_key, case_id, closure_at FROM ready
            ),
            ev AS (
                SELECT e.source, e.event_type, e.occurred_at, e.client_key, e.case_id, e.client_id, e.attorney_email, e.status, e.confidence_score, d.closure_at
                FROM {events} e JOIN due_case d ON e.client_key = d.client_key AND e.case_id = d.case_id
                WHERE e.occurred_at <= {now}
            ),
            verdict AS (
                SELECT client_key, case_id, occurred_at, bool_and({keep}) AS keep
                FROM ev WHERE source IN ({List(rule.LikelySources)})
                GROUP BY client_key, case_id, occurred_at
            ),
            contact AS (
                SELECT client_key, case_id, occurred_at, min(attorney_email) AS attorney_email, min(client_id) AS client_id
                FROM ev GROUP BY client_key, case_id, occurred_at
            ),
            purchase AS (
                SELECT client_key, case_id, min(occurred_at) AS purchased_at
                FROM ev WHERE event_type = {Text(rule.CancelType)} AND occurred_at >= closure_at
                GROUP BY client_key, case_id
            ),
            settled AS (
                SELECT reminder_key FROM ({latest}) l WHERE status IN ({List(Settled)})
            ),
            candidates AS (
                SELECT md5(concat_ws('|', {Text(rule.Name)}, r.client_key, r.case_id, CAST(r.occurrence AS VARCHAR))) AS reminder_key,
                       {Text(rule.Name)} AS rule, r.client_key, r.case_id, r.occurrence, r.closure_at, r.due_at,
                       k.occurred_at AS signal_at, ct.client_id, ct.attorney_email
                FROM ready r
            """;
        var joins = dialect == SqlDialect.DuckDb
            ? """
                ASOF JOIN verdict k ON r.client_key = k.client_key AND r.case_id = k.case_id AND r.due_at >= k.occurred_at
                ASOF JOIN contact ct ON r.client_key = ct.client_key AND r.case_id = ct.case_id AND r.due_at >= ct.occurred_at
              """
            : """
                JOIN LATERAL (SELECT v.keep, v.occurred_at FROM verdict v WHERE v.client_key = r.client_key AND v.case_id = r.case_id AND v.occurred_at <= r.due_at ORDER BY v.occurred_at DESC LIMIT 1) k ON true
                JOIN LATERAL (SELECT x.client_id, x.attorney_email FROM contact x WHERE x.client_key = r.client_key AND x.case_id = r.case_id AND x.occurred_at <= r.due_at ORDER BY x.occurred_at DESC LIMIT 1) ct ON true
              """;
        return head + "\n" + joins + $"""
                LEFT JOIN purchase p ON r.client_key = p.client_key AND r.case_id = p.case_id
                WHERE k.keep AND p.purchased_at IS NULL
            )
            SELECT c.* FROM candidates c WHERE NOT EXISTS (SELECT 1 FROM settled s WHERE s.reminder_key = c.reminder_key)
            """;
    }

    /// <summary>A timestamp literal both engines read as an instant in UTC.</summary>
    public static string Instant(DateTimeOffset instant) =>
        "TIMESTAMPTZ '" + instant.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00'";

    /// <summary>The reminder key the query computes, for code that needs it without the database.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5351", Justification = "An identifier that must equal SQL's md5() in DuckDB and PostgreSQL, not a security measure.")]
    public static string Key(string rule, string clientKey, string caseId, int occurrence) =>
        Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"{rule}|{clientKey}|{caseId}|{occurrence}"))));

    private static string Seconds(TimeSpan span) => ((long)span.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    private static string List(IEnumerable<string> values) => string.Join(", ", values.Select(Text));

    private static string Text(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
}
