using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Sluice.Core.Metadata;

/// <summary>What <c>sluice recover</c> finds where the metadata store should be.</summary>
public enum MetadataStoreState
{
    Missing,
    Healthy,
    Damaged,
}

/// <summary>Tells a lost or damaged metadata store from a healthy one, and keeps a damaged one aside (never deletes it).</summary>
public static class MetadataStoreHealth
{
    /// <summary>
    /// The store's state and, when damaged, why. A store that cannot be used for another reason (read-only, no space,
    /// no permission) throws its <see cref="MetadataUnavailableException"/>: recovering would not help there.
    /// </summary>
    public static (MetadataStoreState State, string Detail) Inspect(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!Path.Exists(data.MetadataPath))
        {
            return (MetadataStoreState.Missing, "");
        }

        if (Directory.Exists(data.MetadataPath))
        {
            return (MetadataStoreState.Damaged, $"{data.MetadataPath} is a folder, not a file");
        }

        try
        {
            var store = new MetadataStore(data);
            using var c = store.Open();
            var check = c.Scalar<string>("PRAGMA quick_check") ?? "";
            return check == "ok" ? (MetadataStoreState.Healthy, "") : (MetadataStoreState.Damaged, $"integrity check: {check}");
        }
        catch (MetadataUnavailableException e) when (e.InnerException is SqliteException s && IsDamage(s))
        {
            return (MetadataStoreState.Damaged, e.Message);
        }
        catch (SqliteException e) when (IsDamage(e))
        {
            return (MetadataStoreState.Damaged, e.Message);
        }
    }

    /// <summary>Renames the store and its WAL files to <c>meta.db.damaged-&lt;UTC time&gt;</c>; returns the new name of the store.</summary>
    public static string MoveAside(DataDirectory data, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(time);
        SqliteConnection.ClearAllPools();
        var aside = $"{data.MetadataPath}.damaged-{time.GetUtcNow().ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}";
        foreach (var suffix in new[] { "-wal", "-shm", "" })
        {
            var from = data.MetadataPath + suffix;
            if (File.Exists(from)) { File.Move(from, aside + suffix); }
            else if (Directory.Exists(from)) { Directory.Move(from, aside + suffix); }
        }

        return aside;
    }

    private static bool IsDamage(SqliteException e) => (e.SqliteErrorCode & 0xFF) is 11 or 26;
}
