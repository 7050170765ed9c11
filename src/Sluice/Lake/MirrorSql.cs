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
    /// row a fold has seen deleted or truncated (docs/CDC.md, "Folding"). Below <paramref name="settledBelow"/>, the
    /// source's low-water mark, no change can come any more, so a tombstone there refuses nothing and goes; without a
    /// mark tombstones are bounded by truncates only. Below a tombstone the key's last live change stays too while the
    /// tombstone does not reach below the mark: a key change's insert may still come in a later write, cut from its
    /// delete (a cluster's consumer cuts batches by count, not at commits), and takes the values it did not carry from
    /// that row. Below the mark every change of the delete's transaction is stored, so the row may go.
    /// </summary>
    public static string Folded(LakeTable table, string changes, long? settledBelow)
    {
        var key = KeyList(table);
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq, delete = ChangeEnvelope.Delete;
        var newest = NewestFirst(key);
        var (below, stays) = settledBelow is { } m
            ? (string.Create(System.Globalization.CultureInfo.InvariantCulture, $" AND NOT ({op} = '{delete}' AND {lsn} < {m})"), string.Create(System.Globalization.CultureInfo.InvariantCulture, $" AND _sluice_last_lsn >= {m}"))
            : ("", "");
        return $"WITH _folded AS ({changes}) " +
               $"SELECT * FROM _folded WHERE {op} = '{ChangeEnvelope.Truncate}' QUALIFY row_number() OVER (ORDER BY {lsn} DESC, {seq} DESC) = 1 " +
               $"UNION ALL SELECT * EXCLUDE (_sluice_n, _sluice_live, _sluice_last_op, _sluice_last_lsn) FROM (" +
               $"SELECT *, row_number() OVER ({newest}) AS _sluice_n, row_number() OVER (PARTITION BY {key}, {op} = '{delete}' ORDER BY {lsn} DESC, {seq} DESC) AS _sluice_live, " +
               $"first_value({op}) OVER ({newest}) AS _sluice_last_op, first_value({lsn}) OVER ({newest}) AS _sluice_last_lsn " +
               $"FROM ({AfterTruncate("SELECT * FROM _folded")})) " +
               $"WHERE (_sluice_n = 1{below}) OR (_sluice_last_op = '{delete}' AND {op} <> '{delete}' AND _sluice_live = 1{stays})";
    }

    /// <summary>Each key's last change (a delete included) after the table's last truncate, every column as stored.</summary>
    private static string LatestPerKey(LakeTable table, string changes) =>
        $"SELECT * FROM ({AfterTruncate(changes)}) QUALIFY row_number() OVER ({NewestFirst(KeyList(table))}) = 1";

    /// <summary>The mirror's key columns, quoted, as one list; a table that is no mirror is refused.</summary>
    private static string KeyList(LakeTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { throw new ArgumentException($"{table.QualifiedName} is not a mirror", nameof(table)); }
        return string.Join(", ", table.MirrorKey!.Select(LakeQueryEngine.Quote));
    }

    /// <summary>A window over each key's changes, its newest (by <c>_lsn</c>, <c>_seq</c>) first.</summary>
    private static string NewestFirst(string keyList) => $"PARTITION BY {keyList} ORDER BY {ChangeEnvelope.Lsn} DESC, {ChangeEnvelope.Seq} DESC";

    /// <summary>The changes after the table's last truncate (the truncate left out), every column as stored.</summary>
    private static string AfterTruncate(string changes)
    {
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        return $"WITH _changes AS ({changes}), " +
               $"_truncated AS (SELECT {lsn} AS l, {seq} AS s FROM _changes WHERE {op} = '{ChangeEnvelope.Truncate}' ORDER BY {lsn} DESC, {seq} DESC LIMIT 1) " +
               $"SELECT _changes.* FROM _changes LEFT JOIN _truncated ON true " +
               $"WHERE {op} <> '{ChangeEnvelope.Truncate}' AND (_truncated.l IS NULL OR {lsn} > _truncated.l OR ({lsn} = _truncated.l AND {seq} > _truncated.s))";
    }
}
