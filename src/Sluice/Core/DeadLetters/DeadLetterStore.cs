using Microsoft.Data.Sqlite;
using Sluice.Core.Metadata;

namespace Sluice.Core.DeadLetters;

/// <summary>The durable dead-letter store in the metadata database. Nothing is dropped silently: every rejection lands here.</summary>
public sealed class DeadLetterStore(MetadataStore store, TimeProvider time)
{
    public const string Pending = "pending";
    public const string Replayed = "replayed";

    public void Add(SqliteConnection connection, SqliteTransaction tx, string source, string position, string reason, string? payload) =>
        connection.Execute(
            "INSERT INTO dead_letters(source, position, reason, payload, created_at) VALUES ($s, $p, $r, $d, $t)",
            tx, ("$s", source), ("$p", position), ("$r", reason), ("$d", payload), ("$t", time.GetUtcNow().Iso()));

    public void Add(string source, string position, string reason, string? payload)
    {
        using var c = store.Open();
        using var tx = c.BeginTransaction();
        Add(c, tx, source, position, reason, payload);
        tx.Commit();
    }

    public IReadOnlyList<DeadLetter> List(string? sourcePrefix = null, string? status = null, int limit = 100)
    {
        using var c = store.Open();
        using var cmd = c.Command(
            "SELECT id, source, position, reason, payload, created_at, status, replayed_at FROM dead_letters " +
            "WHERE ($src IS NULL OR source LIKE $src || '%') AND ($st IS NULL OR status = $st) ORDER BY id LIMIT $lim",
            null, ("$src", sourcePrefix), ("$st", status), ("$lim", limit));
        return Read(cmd);
    }

    public DeadLetter? Get(long id)
    {
        using var c = store.Open();
        using var cmd = c.Command("SELECT id, source, position, reason, payload, created_at, status, replayed_at FROM dead_letters WHERE id = $id", null, ("$id", id));
        return Read(cmd).FirstOrDefault();
    }

    public long Count(string? sourcePrefix = null, string? status = null)
    {
        using var c = store.Open();
        return c.Scalar<long>(
            "SELECT count(*) FROM dead_letters WHERE ($src IS NULL OR source LIKE $src || '%') AND ($st IS NULL OR status = $st)",
            null, ("$src", sourcePrefix), ("$st", status));
    }

    public void MarkReplayed(long id)
    {
        using var c = store.Open();
        c.Execute("UPDATE dead_letters SET status = $s, replayed_at = $t WHERE id = $id", null, ("$s", Replayed), ("$t", time.GetUtcNow().Iso()), ("$id", id));
    }

    private static List<DeadLetter> Read(SqliteCommand cmd)
    {
        var list = new List<DeadLetter>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            list.Add(new DeadLetter(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4),
                SqliteExtensions.ParseIso(r.GetString(5)), r.GetString(6), r.IsDBNull(7) ? null : SqliteExtensions.ParseIso(r.GetString(7))));
        }

        return list;
    }
}
