using System.Data.Common;

namespace Sluice.Core.Metadata;

/// <summary>Source positions (file hash, offset, LSN, watermark) by key; written in the same transaction as the data they cover when possible.</summary>
public sealed class CheckpointStore(MetadataStore store, TimeProvider time)
{
    public string? Get(string key)
    {
        using var c = store.Connect();
        return c.Scalar<string>("SELECT value FROM checkpoints WHERE key = $k", null, ("$k", key));
    }

    public void Set(string key, string value, DbConnection? connection = null, DbTransaction? tx = null)
    {
        const string sql = "INSERT INTO checkpoints(key, value, updated_at) VALUES ($k, $v, $t) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
        if (connection is not null)
        {
            connection.Execute(sql, tx, ("$k", key), ("$v", value), ("$t", time.GetUtcNow().Iso()));
            return;
        }

        using var c = store.Connect();
        c.Execute(sql, null, ("$k", key), ("$v", value), ("$t", time.GetUtcNow().Iso()));
    }

    /// <summary>Sets every checkpoint of <paramref name="values"/> in one transaction: all of them or, after a crash, none.</summary>
    public void SetAll(IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var c = store.Connect();
        // SQLite takes its write lock at once (no deadlock on upgrading a read lock); plain upserts need no more in Postgres.
        using var tx = c is Microsoft.Data.Sqlite.SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : c.BeginTransaction();
        foreach (var (key, value) in values) { Set(key, value, c, tx); }

        tx.Commit();
    }
}
