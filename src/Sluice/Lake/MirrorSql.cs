using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// Merge-on-read for mirror tables (docs/CDC.md, "Mirrors"): a mirror's files hold change rows with the change
/// envelope, and the current state is, per key, the change with the highest (<c>_lsn</c>, <c>_seq</c>) unless it is a
/// delete, counting only changes after the last truncate. A compacted file holds exactly such rows, so the same SQL
/// reads a compacted state, the changes after it, and both together. Duplicates (the same change written twice)
/// collapse: they share their position and their values.
/// </summary>
public static class MirrorSql
{
    /// <summary>
    /// The current rows of a mirror whose changes <paramref name="changes"/> selects: the table's own columns, or with
    /// <paramref name="envelope"/> every column as stored (what compaction writes back).
    /// </summary>
    public static string Current(LakeTable table, string changes, bool envelope)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!table.IsMirror) { throw new ArgumentException($"{table.QualifiedName} is not a mirror", nameof(table)); }
        var key = string.Join(", ", table.MirrorKey!.Select(LakeQueryEngine.Quote));
        // By exclusion, not by name: a column just added to the table is in no file yet, and a query must still work.
        var columns = envelope ? "*" : $"COLUMNS(c -> c NOT IN ({string.Join(", ", ChangeEnvelope.Fields.Select(f => LakeQueryEngine.Literal(f.Name)))}))";
        const string op = ChangeEnvelope.Op, lsn = ChangeEnvelope.Lsn, seq = ChangeEnvelope.Seq;
        return $"WITH _changes AS ({changes}), " +
               $"_truncated AS (SELECT {lsn} AS l, {seq} AS s FROM _changes WHERE {op} = '{ChangeEnvelope.Truncate}' ORDER BY {lsn} DESC, {seq} DESC LIMIT 1) " +
               $"SELECT {columns} FROM (SELECT _changes.* FROM _changes LEFT JOIN _truncated ON true " +
               $"WHERE {op} <> '{ChangeEnvelope.Truncate}' AND (_truncated.l IS NULL OR {lsn} > _truncated.l OR ({lsn} = _truncated.l AND {seq} > _truncated.s)) " +
               $"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {lsn} DESC, {seq} DESC) = 1) " +
               $"WHERE {op} <> '{ChangeEnvelope.Delete}'";
    }
}
