using System.Globalization;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// What the source remembers about its slot, in the metadata store: the consistent point it was created at (snapshot
/// batches end there) and how far the source itself confirmed it while idle. Together with the pipeline's checkpoints
/// this tells a slot that continues from a slot that was dropped, re-created or moved by someone else. Kept through
/// <see cref="MetadataStore.Connect"/>, so the workers of a cluster share it (the one that takes the slot over reads
/// what its predecessor recorded); the SQL runs on SQLite and Postgres alike.
/// </summary>
internal sealed class PgCdcState(MetadataStore store, TimeProvider time)
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS pg_cdc_slots (
            slot TEXT NOT NULL, database TEXT NOT NULL, consistent_point INTEGER NOT NULL, snapshot INTEGER NOT NULL,
            advanced_to INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, PRIMARY KEY (slot, database));
        """,
        """
        CREATE TABLE IF NOT EXISTS pg_cdc_tables (
            slot TEXT NOT NULL, database TEXT NOT NULL, schema_name TEXT NOT NULL, table_name TEXT NOT NULL,
            since INTEGER NOT NULL, recorded_at TEXT NOT NULL, PRIMARY KEY (slot, database, schema_name, table_name));
        """,
    ];

    public void EnsureSchema() => store.Migrate("postgres_cdc", Migrations);

    public SlotRecord? Get(string slot, string database)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT consistent_point, snapshot, advanced_to FROM pg_cdc_slots WHERE slot = $s AND database = $d", null, ("$s", slot), ("$d", database));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new SlotRecord(r.GetInt64(0), r.GetInt64(1) == 1, r.GetInt64(2)) : null;
    }

    public void Created(string slot, string database, long consistentPoint, bool snapshot)
    {
        using var c = store.Connect();
        c.Execute(
            "INSERT INTO pg_cdc_slots(slot, database, consistent_point, snapshot, advanced_to, created_at) VALUES ($s, $d, $p, $n, 0, $t) " +
            "ON CONFLICT(slot, database) DO UPDATE SET consistent_point = excluded.consistent_point, snapshot = excluded.snapshot, advanced_to = 0, created_at = excluded.created_at",
            null, ("$s", slot), ("$d", database), ("$p", consistentPoint), ("$n", snapshot ? 1 : 0), ("$t", time.GetUtcNow().Iso()));
    }

    /// <summary>
    /// The tables whose existing rows reached every sink (in the slot's snapshot, or in a snapshot of a table added to
    /// the recipe later): a table streamed but not listed here has rows from before it was added that nobody read yet.
    /// </summary>
    public HashSet<(string Schema, string Table)> Tables(string slot, string database)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT schema_name, table_name FROM pg_cdc_tables WHERE slot = $s AND database = $d", null, ("$s", slot), ("$d", database));
        using var r = cmd.ExecuteReader();
        var tables = new HashSet<(string, string)>();
        while (r.Read()) { tables.Add((r.GetString(0), r.GetString(1))); }
        return tables;
    }

    /// <summary>Records tables as read (see <see cref="Tables"/>); <paramref name="replace"/> forgets the others (a new slot's snapshot read them all).</summary>
    public void TablesRead(string slot, string database, IEnumerable<CdcTable> tables, long since, bool replace)
    {
        using var c = store.Connect();
        using var tx = c.BeginWrite();
        if (replace) { c.Execute("DELETE FROM pg_cdc_tables WHERE slot = $s AND database = $d", tx, ("$s", slot), ("$d", database)); }
        foreach (var table in tables)
        {
            c.Execute(
                "INSERT INTO pg_cdc_tables(slot, database, schema_name, table_name, since, recorded_at) VALUES ($s, $d, $n, $t, $p, $at) ON CONFLICT DO NOTHING",
                tx, ("$s", slot), ("$d", database), ("$n", table.Schema), ("$t", table.Name), ("$p", since), ("$at", time.GetUtcNow().Iso()));
        }

        tx.Commit();
    }

    /// <summary>Written before the position is sent to the server, so what the server holds is never ahead of this.</summary>
    public void Advanced(string slot, string database, long position)
    {
        using var c = store.Connect();
        c.Execute("UPDATE pg_cdc_slots SET advanced_to = CASE WHEN advanced_to > $p THEN advanced_to ELSE $p END WHERE slot = $s AND database = $d", null, ("$s", slot), ("$d", database), ("$p", position));
    }

    public static string Lsn(long position) => new NpgsqlTypes.NpgsqlLogSequenceNumber(unchecked((ulong)position)).ToString();

    public static long Parse(string lsn) => unchecked((long)(ulong)NpgsqlTypes.NpgsqlLogSequenceNumber.Parse(lsn));

    public static string Describe(long? position) => position is { } p ? Lsn(p) : "nothing";

    public static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}

internal sealed record SlotRecord(long ConsistentPoint, bool Snapshot, long AdvancedTo);
