using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Lake;

/// <summary>
/// Views of the embedded warehouse, kept as SQL in the metadata store and created in every DuckDB session that
/// <see cref="LakeQueryEngine.Open"/> makes, next to the table views. A view is saved in the same metadata transaction
/// as the rest of its unit of work, so <c>sluice query</c> from any process sees it as soon as it is committed.
/// </summary>
public sealed class LakeViews
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS lake_views (
            name TEXT PRIMARY KEY, sql TEXT NOT NULL, updated_at TEXT NOT NULL);
        """,
    ];

    private readonly MetadataStore _store;
    private readonly Lazy<bool> _migrated;

    public LakeViews(MetadataStore store)
    {
        _store = store;
        // PublicationOnly: a failed migration (a full disk) is tried again, not remembered for the life of the process (LakeMirrors).
        _migrated = new Lazy<bool>(() =>
        {
            store.Migrate("lake_views", Migrations);
            return true;
        }, LazyThreadSafetyMode.PublicationOnly);
    }

    /// <summary>Creates or replaces a view (<c>zone.name</c>) inside the caller's transaction.</summary>
    public void Save(DbConnection connection, DbTransaction tx, string qualifiedName, string sql, DateTimeOffset now)
    {
        _ = _migrated.Value;
        connection.Execute(
            "INSERT INTO lake_views(name, sql, updated_at) VALUES ($n, $s, $t) ON CONFLICT(name) DO UPDATE SET sql = excluded.sql, updated_at = excluded.updated_at",
            tx, ("$n", qualifiedName), ("$s", sql), ("$t", now.Iso()));
    }

    public void Drop(DbConnection connection, DbTransaction tx, string qualifiedName)
    {
        _ = _migrated.Value;
        connection.Execute("DELETE FROM lake_views WHERE name = $n", tx, ("$n", qualifiedName));
    }

    public IReadOnlyList<(string Name, string Sql)> All()
    {
        _ = _migrated.Value;
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT name, sql FROM lake_views ORDER BY name");
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (r.Read())
        {
            list.Add((r.GetString(0), r.GetString(1)));
        }

        return list;
    }
}
