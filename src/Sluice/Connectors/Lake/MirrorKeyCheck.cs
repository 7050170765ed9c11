using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Connectors.Lake;

/// <summary>
/// The lake mirror's check per key (docs/SCALING.md, "Across batches, per key"): a change at or below what the mirror
/// holds for its key (the position of the key's last stored change: its row, or its delete, which a fold keeps as a
/// tombstone, <see cref="MirrorSql.Folded"/>) or at or below the table's last truncate changes nothing, and is left out
/// of the write before the values it did not carry are filled. Such a change comes when the relay published a batch
/// again after a NATS store failure: JetStream stored some of its changes only the second time, after newer ones.
/// Merge-on-read alone would hide it (it is older), but its unchanged (TOAST) values would be taken from a newer
/// version, or, its key deleted, it would be dead-lettered as a change whose previous version the mirror never held.
/// </summary>
internal static class MirrorKeyCheck
{
    /// <summary>The rows of <paramref name="changes"/> (one table's) newer than what <paramref name="table"/> holds for their keys.</summary>
    public static ColumnBatch Newer(LakeStore lake, LakeTable table, ColumnBatch changes, IReadOnlyList<string> key)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(key);
        if (changes.Count == 0) { return changes; }
        var files = lake.Files(table.QualifiedName);
        if (files.Count == 0) { return changes; }
        var schema = changes.Schema;
        var ops = changes.Strings(schema.IndexOf(ChangeEnvelope.Op));
        var lsns = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Lsn));
        var seqs = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Seq));
        using var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        // Only a change at or below the highest _lsn stored can be at or below something stored. The footers' statistics
        // say which (no row is read): as a rule none (the stream comes in order), or the first few of a write when one
        // transaction's changes span two writes.
        var highest = HighestLsn(db, files);
        var suspects = Enumerable.Range(0, changes.Count).Where(r => (lsns[r] ?? 0) <= highest).ToList();
        if (suspects.Count == 0) { return changes; }
        var keyAt = key.Select(schema.IndexOf).ToArray();
        var columns = changes.Columns.ToArray();
        var keys = suspects.ToDictionary(r => r, r => ops[r] == ChangeEnvelope.Truncate ? null : MirrorWrite.KeyText(columns, keyAt, r));
        var (floor, held) = Held(db, table, files, key, keys.Values.OfType<string>().ToHashSet(StringComparer.Ordinal));
        var stale = new HashSet<int>();
        foreach (var (row, text) in keys)
        {
            var at = new ChangePosition(lsns[row] ?? 0, seqs[row] ?? 0);
            if ((floor is { } f && at <= f) || (text is not null && held.TryGetValue(text, out var last) && at <= last)) { stale.Add(row); }
        }

        return stale.Count == 0 ? changes : changes.Gather(Enumerable.Range(0, changes.Count).Where(r => !stale.Contains(r)).ToArray());
    }

    /// <summary>The highest <c>_lsn</c> in <paramref name="files"/> by their statistics; <see cref="long.MaxValue"/> when a row group has none.</summary>
    private static long HighestLsn(DuckDBConnection db, IReadOnlyList<string> files)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText =
            $"SELECT max(TRY_CAST(coalesce(stats_max_value, stats_max) AS BIGINT)), count(*) FILTER (WHERE TRY_CAST(coalesce(stats_max_value, stats_max) AS BIGINT) IS NULL), count(*) " +
            $"FROM parquet_metadata([{string.Join(", ", files.Select(LakeQueryEngine.Literal))}]) WHERE path_in_schema = '{ChangeEnvelope.Lsn}'";
        using var r = cmd.ExecuteReader();
        r.Read();
        return r.IsDBNull(0) || Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture) > 0 || Convert.ToInt64(r.GetValue(2), CultureInfo.InvariantCulture) == 0
            ? long.MaxValue
            : Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture);
    }

    /// <summary>The table's last truncate, and the position of the last stored change (after it or not) of each of <paramref name="keys"/>.</summary>
    private static (ChangePosition? Floor, Dictionary<string, ChangePosition> Held) Held(
        DuckDBConnection db, LakeTable table, IReadOnlyList<string> files, IReadOnlyList<string> key, HashSet<string> keys)
    {
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        var keySql = MirrorWrite.KeySql(key);
        using var cmd = db.CreateCommand();
        cmd.CommandText =
            $"WITH _c AS ({LakeQueryEngine.RowsOf(table, files)}) " +
            $"SELECT CAST(NULL AS VARCHAR), {lsn}, {seq} FROM _c WHERE {op} = '{ChangeEnvelope.Truncate}' QUALIFY row_number() OVER (ORDER BY {lsn} DESC, {seq} DESC) = 1" +
            (keys.Count == 0 ? "" :
                $" UNION ALL SELECT {keySql}, {lsn}, {seq} FROM _c WHERE {op} <> '{ChangeEnvelope.Truncate}' " +
                $"AND {keySql} IN (SELECT _k FROM (VALUES {string.Join(", ", keys.Select(k => $"({LakeQueryEngine.Literal(k)})"))}) _w(_k)) " +
                $"QUALIFY row_number() OVER (PARTITION BY {keySql} ORDER BY {lsn} DESC, {seq} DESC) = 1");
        ChangePosition? floor = null;
        var held = new Dictionary<string, ChangePosition>(StringComparer.Ordinal);
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            // A position's missing part counts as 0, as the batch's order counts it (MirrorChanges.InPositionOrder).
            var at = new ChangePosition(r.IsDBNull(1) ? 0 : Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture), r.IsDBNull(2) ? 0 : Convert.ToInt64(r.GetValue(2), CultureInfo.InvariantCulture));
            if (r.IsDBNull(0)) { floor = at; }
            else { held[r.GetString(0)] = at; }
        }

        return (floor, held);
    }
}
