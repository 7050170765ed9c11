using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// Merge-on-read for mirror tables (docs/CDC.md, "Mirrors"): a mirror's files hold change rows with the change
/// envelope, and the current state is, per key, the change with the highest (<c>_lsn</c>, <c>_seq</c>) unless it is a
/// delete, counting only changes after the last truncate. A folded file holds the last truncate and each key's last
/// change after it (<see cref="Folded"/>), so the same SQL reads a folded state, the changes after it, and both
/// together. Duplicates (the same change written twice) collapse: they share their position and their values.
/// </summary>
public static class MirrorSql
{
    /// <summary>The current rows of a mirror whose changes <paramref name="changes"/> selects: the table's own columns.</summary>
    public static string Current(LakeTable table, string changes)
    {
        // By exclusion, not by name: a column just added to the table is in no file yet, and a query must still work.
        var columns = $"COLUMNS(c -> c NOT IN ({string.Join(", ", ChangeEnvelope.Fields.Select(f => LakeQueryEngine.Literal(f.Name)))}))";
        return $"SELECT {columns} FROM ({LatestPerKey(table, changes)}) WHERE {ChangeEnvelope.Op} <> '{ChangeEnvelope.Delete}'";
    }

    /// <summary>
    /// What a fold writes in place of the changes <paramref name="changes"/> selects (every column as stored): the last
    /// truncate, and each key's last change after it, a delete included (a tombstone). Read with <see cref="Current"/>,
    /// alone or beside newer changes, they give the rows the changes gave; and they keep what a write checks a change
    /// stored late against (its key's newest position, the table's last truncate), so such a change never brings back a
    /// row a fold has seen deleted or truncated (docs/CDC.md, "Folding"). Tombstones are bounded by truncates only.
    /// </summary>
    public static string Folded(LakeTable table, string changes)
    {
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        return $"WITH _folded AS ({changes}) " +
               $"SELECT * FROM _folded WHERE {op} = '{ChangeEnvelope.Truncate}' QUALIFY row_number() OVER (ORDER BY {lsn} DESC, {seq} DESC) = 1 " +
               $"UNION ALL SELECT * FROM ({LatestPerKey(table, "SELECT * FROM _folded")})";
    }

    /// <summary>Each key's last change (a delete included) after the table's last truncate, every column as stored.</summary>
    private static string LatestPerKey(LakeTable table, string changes)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { throw new ArgumentException($"{table.QualifiedName} is not a mirror", nameof(table)); }
        var key = string.Join(", ", table.MirrorKey!.Select(LakeQueryEngine.Quote));
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        return $"WITH _changes AS ({changes}), " +
               $"_truncated AS (SELECT {lsn} AS l, {seq} AS s FROM _changes WHERE {op} = '{ChangeEnvelope.Truncate}' ORDER BY {lsn} DESC, {seq} DESC LIMIT 1) " +
               $"SELECT _changes.* FROM _changes LEFT JOIN _truncated ON true " +
               $"WHERE {op} <> '{ChangeEnvelope.Truncate}' AND (_truncated.l IS NULL OR {lsn} > _truncated.l OR ({lsn} = _truncated.l AND {seq} > _truncated.s)) " +
               $"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {lsn} DESC, {seq} DESC) = 1";
    }
}
