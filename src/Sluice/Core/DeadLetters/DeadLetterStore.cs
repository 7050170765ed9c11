using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Core.DeadLetters;

/// <summary>
/// The durable dead-letter store in the metadata database. Nothing is dropped silently: every rejection lands here.
/// A letter may carry a dedup key (for example a file's content hash and record index), so that work replayed after a
/// crash does not list the same rejection twice.
/// </summary>
public sealed partial class DeadLetterStore
{
    public const string Pending = "pending";
    public const string Replayed = "replayed";

    /// <summary>Set aside by an operator with a reason: kept (payload, position, edits), never replayed.</summary>
    public const string Discarded = "discarded";

    private const string Columns = "id, source, position, reason, payload, created_at, status, replayed_at, discard_reason";

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;

    public DeadLetterStore(MetadataStore store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = time;
        // The operator's columns and edit history (DeadLetterStore.Operations.cs), added to existing data folders too.
        store.Migrate("dead_letters.operations", OperationMigrations);
    }

    /// <param name="rows">The rows the letter stands for (a request of the HTTP sink holds many), for <see cref="DeadLetterTally"/>.</param>
    public void Add(DbConnection connection, DbTransaction? tx, string source, string position, string reason, string? payload, string? dedupKey = null, long rows = 1)
    {
        ArgumentNullException.ThrowIfNull(connection);
        connection.Execute(
            "INSERT INTO dead_letters(source, position, reason, payload, created_at, dedup_key) VALUES ($s, $p, $r, $d, $t, $k) " +
            "ON CONFLICT(dedup_key) WHERE dedup_key IS NOT NULL DO UPDATE SET reason = excluded.reason, position = excluded.position, status = 'pending', replayed_at = NULL",
            tx, ("$s", source), ("$p", position), ("$r", reason), ("$d", payload), ("$t", _time.GetUtcNow().Iso()), ("$k", dedupKey));
        DeadLetterTally.Count(rows);
    }

    public void Add(string source, string position, string reason, string? payload, string? dedupKey = null, long rows = 1)
    {
        using var c = _store.Connect();
        Add(c, null, source, position, reason, payload, dedupKey, rows);
    }

    public IReadOnlyList<DeadLetter> List(string? sourcePrefix = null, string? status = null, int limit = 100)
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            $"SELECT {Columns} FROM dead_letters " +
            "WHERE (CAST($src AS TEXT) IS NULL OR substr(source, 1, length($src)) = $src) AND (CAST($st AS TEXT) IS NULL OR status = $st) ORDER BY id LIMIT $lim",
            null, ("$src", sourcePrefix), ("$st", status), ("$lim", limit));
        return Read(cmd);
    }

    public DeadLetter? Get(long id)
    {
        using var c = _store.Connect();
        using var cmd = c.Command($"SELECT {Columns} FROM dead_letters WHERE id = $id", null, ("$id", id));
        return Read(cmd).FirstOrDefault();
    }

    /// <summary>True when a letter with this dedup key exists, whatever its status.</summary>
    public bool HasKey(string dedupKey)
    {
        using var c = _store.Connect();
        return c.Scalar<long>("SELECT count(*) FROM dead_letters WHERE dedup_key = $k", null, ("$k", dedupKey)) > 0;
    }

    public long Count(string? sourcePrefix = null, string? status = null)
    {
        using var c = _store.Connect();
        return c.Scalar<long>(
            "SELECT count(*) FROM dead_letters WHERE (CAST($src AS TEXT) IS NULL OR substr(source, 1, length($src)) = $src) AND (CAST($st AS TEXT) IS NULL OR status = $st)",
            null, ("$src", sourcePrefix), ("$st", status));
    }

    /// <summary>
    /// Pending letters of a recipe's sources (<c>&lt;type&gt;:&lt;recipe&gt;</c> and <c>&lt;type&gt;:&lt;recipe&gt;/...</c>), counted by source
    /// and exact reason; at most <paramref name="limit"/> groups, the largest first (the status board classes them).
    /// </summary>
    public IReadOnlyList<(string Source, string Reason, long Count)> PendingByReason(string recipe, int limit = 1000)
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            "SELECT source, reason, count(*) AS n FROM dead_letters WHERE status = 'pending' AND (substr(source, instr(source, ':') + 1) = $r OR substr(source, instr(source, ':') + 1, length($r) + 1) = $r || '/') " +
            "GROUP BY source, reason ORDER BY n DESC LIMIT $l", null, ("$r", recipe), ("$l", limit));
        using var r = cmd.ExecuteReader();
        var rows = new List<(string, string, long)>();
        while (r.Read()) { rows.Add((r.GetString(0), r.GetString(1), r.GetInt64(2))); }
        return rows;
    }

    /// <summary>Letters of a recipe's sources (as <see cref="PendingByReason"/>), or of sources starting with <paramref name="source"/>, added at or after <paramref name="since"/>, whatever became of them.</summary>
    public long CountSince(string recipe, string? source, DateTimeOffset since)
    {
        using var c = _store.Connect();
        return c.Scalar<long>(
            "SELECT count(*) FROM dead_letters WHERE created_at >= $t AND " +
            "(substr(source, instr(source, ':') + 1) = $r OR substr(source, instr(source, ':') + 1, length($r) + 1) = $r || '/') " +
            "AND (CAST($src AS TEXT) IS NULL OR substr(source, 1, length($src)) = $src)",
            null, ("$t", since.Iso()), ("$r", recipe), ("$src", source));
    }

    public void MarkReplayed(long id, DbConnection? connection = null, DbTransaction? tx = null)
    {
        const string sql = "UPDATE dead_letters SET status = $s, replayed_at = $t WHERE id = $id";
        if (connection is not null)
        {
            connection.Execute(sql, tx, ("$s", Replayed), ("$t", _time.GetUtcNow().Iso()), ("$id", id));
            return;
        }

        using var c = _store.Connect();
        c.Execute(sql, null, ("$s", Replayed), ("$t", _time.GetUtcNow().Iso()), ("$id", id));
    }

    /// <summary>A replay that failed again keeps the letter pending, with the newest reason.</summary>
    public void UpdateReason(long id, string reason)
    {
        using var c = _store.Connect();
        c.Execute("UPDATE dead_letters SET reason = $r WHERE id = $id", null, ("$r", reason), ("$id", id));
    }

    private static List<DeadLetter> Read(DbCommand cmd)
    {
        var list = new List<DeadLetter>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new DeadLetter(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4),
                SqliteExtensions.ParseIso(r.GetString(5)), r.GetString(6), r.IsDBNull(7) ? null : SqliteExtensions.ParseIso(r.GetString(7)))
            {
                DiscardReason = r.IsDBNull(8) ? null : r.GetString(8),
            });
        }

        return list;
    }
}
