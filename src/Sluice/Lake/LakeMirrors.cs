using System.Text.Json;
using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Lake;

/// <summary>
/// The lake tables that are mirrors (table <c>lake_mirrors</c>: name and key columns). Kept beside <c>lake_tables</c>
/// rather than in it so the core manifest's schema stays as it is; a table registered without a key stops being one.
/// </summary>
public sealed class LakeMirrors
{
    private static readonly string[] Migrations =
    [
        "CREATE TABLE IF NOT EXISTS lake_mirrors (name TEXT PRIMARY KEY, key_columns TEXT NOT NULL);",
    ];

    private readonly MetadataStore _store;
    private readonly Lazy<bool> _migrated;

    public LakeMirrors(MetadataStore store)
    {
        _store = store;
        // PublicationOnly: a failed migration (a full disk) is tried again by the next call rather than remembered,
        // which would fail every later write and query of the process after the space is back. It is idempotent.
        _migrated = new Lazy<bool>(() =>
        {
            store.Migrate("lake_mirrors", Migrations);
            return true;
        }, LazyThreadSafetyMode.PublicationOnly);
    }

    /// <summary>Creates the table if this store has none yet; call before opening the transaction <see cref="Set"/> joins (the migration takes its own).</summary>
    public void EnsureCreated() => _ = _migrated.Value;

    /// <summary>Records (or, with no key, removes) a table's mirror key inside the caller's transaction.</summary>
    public void Set(DbConnection connection, DbTransaction tx, string qualifiedName, IReadOnlyList<string>? key)
    {
        if (!_migrated.IsValueCreated) { throw new InvalidOperationException("LakeMirrors.EnsureCreated must come before the transaction"); }
        if (key is { Count: > 0 })
        {
            connection.Execute(
                "INSERT INTO lake_mirrors(name, key_columns) VALUES ($n, $k) ON CONFLICT(name) DO UPDATE SET key_columns = excluded.key_columns",
                tx, ("$n", qualifiedName), ("$k", JsonSerializer.Serialize(key)));
        }
        else
        {
            connection.Execute("DELETE FROM lake_mirrors WHERE name = $n", tx, ("$n", qualifiedName));
        }
    }

    /// <summary>Every mirror table's key, by qualified name.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> All()
    {
        _ = _migrated.Value;
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT name, key_columns FROM lake_mirrors");
        using var r = cmd.ExecuteReader();
        var all = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        while (r.Read())
        {
            all[r.GetString(0)] = JsonSerializer.Deserialize<string[]>(r.GetString(1)) ?? [];
        }

        return all;
    }
}
