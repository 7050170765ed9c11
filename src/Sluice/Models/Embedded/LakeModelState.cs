using System.Globalization;
using Sluice.Core.Metadata;

namespace Sluice.Models.Embedded;

/// <summary>
/// Model state of the embedded warehouse, in the metadata store: per model the latest as-of date applied, per day the
/// source fingerprint, status, and each model's input and output fingerprints; and which job builds each model table
/// (<see cref="ModelTableClaims"/>). Writes that go with a lake commit take the commit's connection and transaction.
/// The same SQL runs on a data folder's SQLite store and on a cluster's shared Postgres store (<see cref="MetadataStore.Connect"/>),
/// where every worker sees the state the lake's shared manifest goes with.
/// </summary>
internal sealed class LakeModelState(MetadataStore store, string scope)
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS model_state (
            scope TEXT NOT NULL, model TEXT NOT NULL, applied_through TEXT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, model));
        CREATE TABLE IF NOT EXISTS model_days (
            scope TEXT NOT NULL, day TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, day));
        """,
        // Per model of the day: input and output fingerprints (ModelDayCodec), so a run finds the stale model-days.
        "ALTER TABLE model_days ADD COLUMN models TEXT NULL;",
        // Which models job builds each model table of this data folder (ModelTableClaims).
        """
        CREATE TABLE IF NOT EXISTS model_tables (
            table_name TEXT PRIMARY KEY, scope TEXT NOT NULL, claimed_at TEXT NOT NULL);
        """,
    ];

    public void Migrate() => store.Migrate("models", Migrations);

    /// <summary>
    /// Claims <paramref name="tables"/> for this scope unless another scope owns one of them; either way returns the
    /// owners of those that are owned (so a refused scope claims nothing).
    /// </summary>
    public IReadOnlyDictionary<string, string> Claim(IReadOnlyCollection<string> tables, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(tables);
        using var c = store.Connect();
        using var tx = c.BeginWrite();
        var owners = Owners(c, tx);
        if (tables.Any(t => owners.TryGetValue(t, out var o) && o != scope)) { return owners; }
        foreach (var table in tables.Where(t => !owners.ContainsKey(t)))
        {
            c.Execute("INSERT INTO model_tables(table_name, scope, claimed_at) VALUES ($t, $s, $at)", tx, ("$t", table), ("$s", scope), ("$at", now.Iso()));
            owners[table] = scope;
        }

        tx.Commit();
        return owners;
    }

    /// <summary>Every claimed table with the scope that owns it.</summary>
    public IReadOnlyDictionary<string, string> Owners()
    {
        using var c = store.Connect();
        return Owners(c, null);
    }

    /// <summary>Gives up <paramref name="owner"/>'s claim on <paramref name="table"/>; false when it was not <paramref name="owner"/>'s.</summary>
    public bool Release(string table, string owner)
    {
        using var c = store.Connect();
        return c.Execute("DELETE FROM model_tables WHERE table_name = $t AND scope = $s", null, ("$t", table), ("$s", owner)) == 1;
    }

    private static Dictionary<string, string> Owners(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction? tx)
    {
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        using var cmd = c.Command("SELECT table_name, scope FROM model_tables", tx);
        using var r = cmd.ExecuteReader();
        while (r.Read()) { owners[r.GetString(0)] = r.GetString(1); }
        return owners;
    }

    public DateOnly? AppliedThrough(string model)
    {
        using var c = store.Connect();
        var text = c.Scalar<string>("SELECT applied_through FROM model_state WHERE scope = $s AND model = $m", null, ("$s", scope), ("$m", model));
        return text is null ? null : DateOnly.ParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    public void SetApplied(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string model, DateOnly? through, DateTimeOffset now) =>
        c.Execute(
            "INSERT INTO model_state(scope, model, applied_through, updated_at) VALUES ($s, $m, $a, $t) " +
            "ON CONFLICT(scope, model) DO UPDATE SET applied_through = excluded.applied_through, updated_at = excluded.updated_at",
            tx, ("$s", scope), ("$m", model), ("$a", through?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), ("$t", now.Iso()));

    public IReadOnlyList<DayRecord> Days()
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT day, fingerprint, status, models FROM model_days WHERE scope = $s ORDER BY day", null, ("$s", scope));
        using var r = cmd.ExecuteReader();
        var list = new List<DayRecord>();
        while (r.Read())
        {
            list.Add(new DayRecord(DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(1), Enum.Parse<DayStatus>(r.GetString(2), true))
            {
                Models = ModelDayCodec.Read(r.IsDBNull(3) ? null : r.GetString(3)),
            });
        }

        return list;
    }

    public void SaveDays(IReadOnlyCollection<DayRecord> days, DateTimeOffset now)
    {
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        SaveDays(c, tx, days, now);
        tx.Commit();
    }

    public void SaveDays(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, IReadOnlyCollection<DayRecord> days, DateTimeOffset now)
    {
        foreach (var d in days)
        {
            c.Execute(
                "INSERT INTO model_days(scope, day, fingerprint, status, updated_at, models) VALUES ($s, $d, $f, $st, $t, $m) " +
                "ON CONFLICT(scope, day) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, updated_at = excluded.updated_at, models = excluded.models",
                tx, ("$s", scope), ("$d", d.Day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), ("$f", d.Fingerprint),
                ("$st", d.Status.ToString().ToLowerInvariant()), ("$t", now.Iso()), ("$m", ModelDayCodec.Write(d.Models)));
        }
    }
}
