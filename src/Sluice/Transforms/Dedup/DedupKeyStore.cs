using Sluice.Core.Metadata;

namespace Sluice.Transforms.Dedup;

/// <summary>
/// The dedup window kept in the metadata store (table <c>step_dedup_keys</c>, component migration <c>steps.dedup</c>), so
/// a restart does not let through a repeat of a key seen before it. A batch's new keys are written before the batch goes
/// on to the sinks; a replay of the batch finds them at the same places and keeps its rows.
/// </summary>
internal sealed class DedupKeyStore
{
    private static readonly string[] Migrations =
    [
        "CREATE TABLE step_dedup_keys(step TEXT NOT NULL, key_hash INTEGER NOT NULL, place_hash INTEGER NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY(step, key_hash)) WITHOUT ROWID",
        "CREATE INDEX step_dedup_keys_seen ON step_dedup_keys(step, seen_at)",
    ];

    private readonly MetadataStore _store;
    private readonly string _step;

    public DedupKeyStore(MetadataStore store, string step)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _step = step;
        store.Migrate("steps.dedup", Migrations);
    }

    /// <summary>The keys seen since <paramref name="since"/>, the newest <paramref name="limit"/>, oldest first.</summary>
    public List<(ulong Key, ulong Place, long SeenAt)> Load(long since, int limit)
    {
        using var connection = _store.Open();
        using var command = connection.Command(
            "SELECT key_hash, place_hash, seen_at FROM (SELECT * FROM step_dedup_keys WHERE step = $s AND seen_at >= $since ORDER BY seen_at DESC LIMIT $limit) ORDER BY seen_at",
            null, ("$s", _step), ("$since", since), ("$limit", limit));
        using var reader = command.ExecuteReader();
        var keys = new List<(ulong, ulong, long)>();
        while (reader.Read()) { keys.Add((unchecked((ulong)reader.GetInt64(0)), unchecked((ulong)reader.GetInt64(1)), reader.GetInt64(2))); }
        return keys;
    }

    /// <summary>Adds the batch's new keys and forgets the ones that left the window, in one transaction.</summary>
    public void Save(IReadOnlyList<(ulong Key, ulong Place, long SeenAt)> added, IReadOnlyList<ulong> left, long before)
    {
        using var connection = _store.Open();
        using var tx = connection.BeginTransaction();
        using (var insert = connection.Command("INSERT OR REPLACE INTO step_dedup_keys(step, key_hash, place_hash, seen_at) VALUES ($s, $k, $p, $t)", tx, ("$s", _step), ("$k", 0L), ("$p", 0L), ("$t", 0L)))
        {
            foreach (var (key, place, seenAt) in added)
            {
                insert.Parameters["$k"].Value = unchecked((long)key);
                insert.Parameters["$p"].Value = unchecked((long)place);
                insert.Parameters["$t"].Value = seenAt;
                insert.ExecuteNonQuery();
            }
        }

        using (var forget = connection.Command("DELETE FROM step_dedup_keys WHERE step = $s AND key_hash = $k", tx, ("$s", _step), ("$k", 0L)))
        {
            foreach (var key in left)
            {
                forget.Parameters["$k"].Value = unchecked((long)key);
                forget.ExecuteNonQuery();
            }
        }

        connection.Execute("DELETE FROM step_dedup_keys WHERE step = $s AND seen_at < $before", tx, ("$s", _step), ("$before", before));
        tx.Commit();
    }
}
