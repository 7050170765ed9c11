using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Core.DeadLetters;

/// <summary>One change an operator made to a letter's payload before replaying it: the old text is kept.</summary>
public sealed record DeadLetterEdit(DateTimeOffset At, string By, string? Note, string? Before, string? After);

/// <summary>Which letters an operator means: every part optional, all given parts must match.</summary>
/// <param name="Recipe">The recipe whose component rejected them (source <c>kind:recipe</c> or <c>kind:recipe/...</c>).</param>
/// <param name="Source">Sources starting with this (as <c>sluice dlq list --source</c>).</param>
/// <param name="Reason">Reasons containing this, case-insensitively.</param>
/// <param name="Since">Created at or after.</param>
/// <param name="Until">Created before.</param>
public sealed record DeadLetterFilter(
    string? Recipe = null, string? Source = null, string? Status = null, string? Reason = null, DateTimeOffset? Since = null, DateTimeOffset? Until = null)
{
    public static readonly IReadOnlyList<string> Statuses = [DeadLetterStore.Pending, DeadLetterStore.Replayed, DeadLetterStore.Discarded];

    internal const string Where =
        "(CAST($rec AS TEXT) IS NULL OR substr(source, instr(source, ':') + 1) = $rec OR substr(source, instr(source, ':') + 1, length($rec) + 1) = $rec || '/') " +
        "AND (CAST($src AS TEXT) IS NULL OR substr(source, 1, length($src)) = $src) AND (CAST($st AS TEXT) IS NULL OR status = $st) " +
        "AND (CAST($rea AS TEXT) IS NULL OR instr(lower(reason), lower($rea)) > 0) AND (CAST($since AS TEXT) IS NULL OR created_at >= $since) AND (CAST($until AS TEXT) IS NULL OR created_at < $until)";

    internal (string, object?)[] Parameters() =>
    [
        ("$rec", Recipe), ("$src", Source), ("$st", Status), ("$rea", Reason), ("$since", Since?.Iso()), ("$until", Until?.Iso()),
    ];
}

/// <summary>What an operator does with letters (the console's dead-letter page, <c>sluice dlq edit</c> and <c>discard</c>).</summary>
public sealed partial class DeadLetterStore
{
    private static readonly string[] OperationMigrations =
    [
        """
        ALTER TABLE dead_letters ADD COLUMN discard_reason TEXT NULL;
        ALTER TABLE dead_letters ADD COLUMN discarded_at TEXT NULL;
        CREATE TABLE IF NOT EXISTS dead_letter_edits (
            id INTEGER PRIMARY KEY AUTOINCREMENT, letter_id INTEGER NOT NULL, at TEXT NOT NULL, by TEXT NOT NULL,
            note TEXT NULL, before TEXT NULL, after TEXT NULL);
        CREATE INDEX IF NOT EXISTS ix_dead_letter_edits_letter ON dead_letter_edits(letter_id, id);
        CREATE INDEX IF NOT EXISTS ix_dead_letters_created ON dead_letters(created_at);
        """,
    ];

    /// <summary>The letters the filter matches, newest first, one page of them, and how many match in all.</summary>
    public (long Total, IReadOnlyList<DeadLetter> Items) Find(DeadLetterFilter filter, int limit, int offset = 0)
    {
        ArgumentNullException.ThrowIfNull(filter);
        using var c = _store.Connect();
        var total = c.Scalar<long>($"SELECT count(*) FROM dead_letters WHERE {DeadLetterFilter.Where}", null, filter.Parameters());
        using var cmd = c.Command(
            $"SELECT {Columns} FROM dead_letters WHERE {DeadLetterFilter.Where} ORDER BY id DESC LIMIT $lim OFFSET $off",
            null, [.. filter.Parameters(), ("$lim", limit), ("$off", offset)]);
        return (total, Read(cmd));
    }

    /// <summary>
    /// Replaces a pending letter's payload (a quarantined record fixed by hand before its replay), keeping the old one
    /// in its edit history. Null when there is no such letter; otherwise the letter as it is now, or why it may not change.
    /// </summary>
    public (DeadLetter? Letter, string? Refused) Edit(long id, string payload, string by, string? note)
    {
        using var c = _store.Connect();
        using var tx = c.BeginWrite();
        using (var cmd = c.Command($"SELECT {Columns} FROM dead_letters WHERE id = $id", tx, ("$id", id)))
        {
            if (Read(cmd).FirstOrDefault() is not { } letter) { return (null, null); }
            if (letter.Status != Pending)
            {
                return (letter, $"letter {id} is {letter.Status}: only a pending letter can be edited (it is replayed with the new payload)");
            }

            c.Execute(
                "INSERT INTO dead_letter_edits(letter_id, at, by, note, before, after) VALUES ($id, $at, $by, $note, $before, $after)",
                tx, ("$id", id), ("$at", _time.GetUtcNow().Iso()), ("$by", by), ("$note", note), ("$before", letter.Payload), ("$after", payload));
            c.Execute("UPDATE dead_letters SET payload = $p WHERE id = $id", tx, ("$p", payload), ("$id", id));
        }

        tx.Commit();
        return (Get(id), null);
    }

    /// <summary>A letter's edits, oldest first.</summary>
    public IReadOnlyList<DeadLetterEdit> Edits(long id)
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT at, by, note, before, after FROM dead_letter_edits WHERE letter_id = $id ORDER BY id", null, ("$id", id));
        using var r = cmd.ExecuteReader();
        var edits = new List<DeadLetterEdit>();
        while (r.Read())
        {
            edits.Add(new DeadLetterEdit(SqliteExtensions.ParseIso(r.GetString(0)), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2),
                r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)));
        }

        return edits;
    }

    /// <summary>Sets pending letters aside with a reason (kept, never deleted); returns how many it changed.</summary>
    public long Discard(IReadOnlyCollection<long> ids, string reason)
    {
        ArgumentNullException.ThrowIfNull(ids);
        using var c = _store.Connect();
        using var tx = c.BeginWrite();
        long changed = 0;
        foreach (var id in ids.Distinct())
        {
            changed += c.Execute(DiscardSql + " AND id = $id", tx, ("$r", reason), ("$t", _time.GetUtcNow().Iso()), ("$id", id));
        }

        tx.Commit();
        return changed;
    }

    /// <summary>Sets aside every pending letter the filter matches (whatever status it names, only pending ones change).</summary>
    public long Discard(DeadLetterFilter filter, string reason)
    {
        ArgumentNullException.ThrowIfNull(filter);
        using var c = _store.Connect();
        return c.Execute($"{DiscardSql} AND {DeadLetterFilter.Where}", null, [.. filter.Parameters(), ("$r", reason), ("$t", _time.GetUtcNow().Iso())]);
    }

    private const string DiscardSql = "UPDATE dead_letters SET status = 'discarded', discard_reason = $r, discarded_at = $t WHERE status = 'pending'";
}
