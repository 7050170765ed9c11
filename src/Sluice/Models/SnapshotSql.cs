using Sluice.Core;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models;

/// <summary>
/// An SCD2 merge as SQL both engines run, in three relations built from the target <c>t</c> (its current versions) and
/// the run's source <c>s</c>: <see cref="Candidates"/> (source rows that become versions, with their start <c>_vf</c>),
/// <see cref="Opened"/> (the new version rows, meta columns filled) and <see cref="Closing"/> (per key, the end of its
/// current version). The check strategy opens a version when a tracked value differs, valid from the run's date; the
/// timestamp strategy opens one per source row whose updated_at is newer than the current version's, valid from that
/// updated_at, so one day can bring several versions of a key (each ends where the next starts). A key missing from the
/// source is left (ignore), closed at the run's date (invalidate), or closed and followed by a version marked deleted
/// (new_record), which closes in turn when the key returns. Current versions end at NULL, or at valid_to_current.
/// </summary>
internal sealed class SnapshotSql
{
    private readonly SnapshotSpec _spec;
    private readonly IReadOnlyList<string> _names;
    private readonly IReadOnlyList<string> _tracked;
    private readonly string _target;
    private readonly string _source;

    /// <param name="names">The source's columns.</param>
    /// <param name="timeType">The type of valid_from and valid_to: DATE (check), or the updated_at column's type (timestamp).</param>
    /// <param name="date">The run's date, a DATE literal.</param>
    public SnapshotSql(ModelDefinition model, IReadOnlyList<string> names, string timeType, string target, string source, string date)
    {
        _spec = model.Snapshot!;
        _names = names;
        _tracked = _spec.Strategy == SnapshotStrategy.Check ? Tracked(model, names) : [];
        _target = target;
        _source = source;
        TimeType = timeType;
        At = $"CAST({date} AS {timeType})";
    }

    public string TimeType { get; }

    /// <summary>The run's date as a version time.</summary>
    public string At { get; }

    /// <summary>The columns a check snapshot compares: check_cols, or every column but the key.</summary>
    public static IReadOnlyList<string> Tracked(ModelDefinition model, IReadOnlyList<string> columns)
    {
        var spec = model.Snapshot!;
        foreach (var t in (spec.Tracked ?? []).Where(t => !columns.Contains(t, StringComparer.Ordinal)))
        {
            throw new SluiceException($"{model.Name}: check_cols column '{t}' is not in the result (columns: {string.Join(", ", columns)})");
        }

        var list = spec.Tracked ?? columns.Where(c => !spec.UniqueKey.Contains(c, StringComparer.Ordinal)).ToList();
        return list.Count > 0 ? list : throw new SluiceException($"{model.Name}: a snapshot needs at least one tracked column besides the key");
    }

    /// <summary>The SQL type of each column the snapshot fills, given the version time type.</summary>
    public static IReadOnlyList<(string Name, string Type)> MetaColumns(SnapshotSpec spec, string timeType)
    {
        var list = new List<(string, string)>();
        if (spec.SurrogateKey is { } sk) { list.Add((sk, "BIGINT")); }
        list.Add((spec.ValidFrom, timeType));
        list.Add((spec.ValidTo, timeType));
        list.Add((spec.IsCurrent, "BOOLEAN"));
        if (spec.HardDeletes == HardDeletes.NewRecord) { list.Add((spec.IsDeleted, "BOOLEAN")); }
        if (spec.ScdId is { } id) { list.Add((id, "VARCHAR")); }
        if (spec.UpdatedAtColumn is { } ua) { list.Add((ua, timeType)); }
        return list;
    }

    /// <summary>An empty target of the right shape (source columns, then the meta columns), for a first run.</summary>
    public string EmptyTarget() =>
        $"SELECT {(_spec.SurrogateKey is { } sk ? $"CAST(NULL AS BIGINT) AS {Quote(sk)}, " : "")}s.*, " +
        string.Join(", ", MetaColumns(_spec, TimeType).Where(m => m.Name != _spec.SurrogateKey).Select(m => $"CAST(NULL AS {m.Type}) AS {Quote(m.Name)}")) +
        $" FROM {_source} s WHERE 1 = 0";

    public string On(string a, string b) => string.Join(" AND ", _spec.UniqueKey.Select(k => $"{a}.{Quote(k)} = {b}.{Quote(k)}"));

    private string Key0 => Quote(_spec.UniqueKey[0]);

    private string IsCurrent => Quote(_spec.IsCurrent);

    private string Deleted(string c) => _spec.HardDeletes == HardDeletes.NewRecord ? $"{c}.{Quote(_spec.IsDeleted)}" : "FALSE";

    private string CurrentEnd => _spec.ValidToCurrent is { } v ? $"CAST({Literal(v)} AS {TimeType})" : $"CAST(NULL AS {TimeType})";

    private string Changed(string c, string s) => "(" + string.Join(" OR ", _tracked.Select(t => $"{c}.{Quote(t)} IS DISTINCT FROM {s}.{Quote(t)}")) + ")";

    /// <summary>Source rows that become versions, each with its start <c>_vf</c>.</summary>
    public string Candidates
    {
        get
        {
            var start = _spec.Strategy == SnapshotStrategy.Check ? At : $"CAST(s.{Quote(_spec.UpdatedAt!)} AS {TimeType})";
            // A NULL updated_at is a candidate, so that the key check over the candidates finds it (PostgresWarehouse.KeyCheck).
            var changed = _spec.Strategy == SnapshotStrategy.Check ? Changed("c", "s")
                : $"s.{Quote(_spec.UpdatedAt!)} > c.{Quote(_spec.UpdatedAt!)} OR s.{Quote(_spec.UpdatedAt!)} IS NULL";
            // A key back after its deleted version starts no earlier than that version (its updated_at may be older).
            var vf = _spec.HardDeletes == HardDeletes.NewRecord ? $"CASE WHEN {Deleted("c")} THEN GREATEST({start}, c.{Quote(_spec.ValidFrom)}) ELSE {start} END" : start;
            return $"SELECT s.*, {vf} AS _vf FROM {_source} s LEFT JOIN {_target} c ON {On("c", "s")} AND c.{IsCurrent} " +
                   $"WHERE c.{Key0} IS NULL OR {changed} OR {Deleted("c")}";
        }
    }

    private string Absent => $"c.{IsCurrent} AND NOT {Deleted("c")} AND NOT EXISTS (SELECT 1 FROM {_source} s WHERE {On("c", "s")})";

    /// <summary>The start of a version that follows a key's disappearance: the run's date, never before the version it closes.</summary>
    private string DeletedAt => $"GREATEST({At}, c.{Quote(_spec.ValidFrom)})";

    /// <summary>Per key whose current version ends this run: <c>_to</c>, its end.</summary>
    public string Closing(string candidates) =>
        $"SELECT {string.Join(", ", _spec.UniqueKey.Select(Quote))}, min(_vf) AS _to FROM {candidates} GROUP BY {string.Join(", ", _spec.UniqueKey.Select(Quote))}" +
        (_spec.HardDeletes == HardDeletes.Ignore ? "" : $" UNION ALL SELECT {string.Join(", ", _spec.UniqueKey.Select(k => $"c.{Quote(k)}"))}, {DeletedAt} FROM {_target} c WHERE {Absent}");

    /// <summary>The new version rows: the columns of <see cref="OpenedColumns"/>, surrogate keys after the highest one in key and time order.</summary>
    public string Opened(string candidates)
    {
        var keys = string.Join(", ", _spec.UniqueKey.Select(Quote));
        var deleted = _spec.HardDeletes == HardDeletes.NewRecord;
        var w = $"OVER (PARTITION BY {string.Join(", ", _spec.UniqueKey.Select(k => $"x.{Quote(k)}"))} ORDER BY x._vf)";
        var versions =
            $"SELECT {string.Join(", ", _names.Select(n => $"x.{Quote(n)}"))}, x._vf, COALESCE(LEAD(x._vf) {w}, {CurrentEnd}) AS _vt, LEAD(x._vf) {w} IS NULL AS _ic" +
            (deleted ? ", FALSE AS _del" : "") + $" FROM {candidates} x";
        if (deleted)
        {
            versions += $" UNION ALL SELECT {string.Join(", ", _names.Select(n => $"c.{Quote(n)}"))}, {DeletedAt}, {CurrentEnd}, TRUE, TRUE FROM {_target} c WHERE {Absent}";
        }

        var select = new List<string>();
        if (_spec.SurrogateKey is { } sk)
        {
            select.Add($"CAST((SELECT COALESCE(max({Quote(sk)}), 0) FROM {_target}) + row_number() OVER (ORDER BY {keys}, _vf) AS BIGINT) AS {Quote(sk)}");
        }

        select.AddRange(_names.Select(Quote));
        select.Add($"_vf AS {Quote(_spec.ValidFrom)}");
        select.Add($"_vt AS {Quote(_spec.ValidTo)}");
        select.Add($"_ic AS {IsCurrent}");
        if (deleted) { select.Add($"_del AS {Quote(_spec.IsDeleted)}"); }
        if (_spec.ScdId is { } id)
        {
            select.Add($"md5(concat_ws('|', {string.Join(", ", _spec.UniqueKey.Select(k => $"CAST({Quote(k)} AS VARCHAR)"))}, CAST(_vf AS VARCHAR))) AS {Quote(id)}");
        }

        if (_spec.UpdatedAtColumn is { } ua)
        {
            // dbt's dbt_updated_at: the source's updated_at (timestamp strategy; a deleted version's own start), else the run's date.
            var value = _spec.Strategy == SnapshotStrategy.Timestamp ? $"CAST({Quote(_spec.UpdatedAt!)} AS {TimeType})" : "_vf";
            select.Add($"{(deleted && _spec.Strategy == SnapshotStrategy.Timestamp ? $"CASE WHEN _del THEN _vf ELSE {value} END" : value)} AS {Quote(ua)}");
        }

        return $"SELECT {string.Join(", ", select)} FROM ({versions}) v";
    }

    /// <summary>The columns of <see cref="Opened"/>, in order.</summary>
    public IReadOnlyList<string> OpenedColumns =>
        (_spec.SurrogateKey is { } sk ? [sk] : new List<string>()).Concat(_names)
            .Concat(MetaColumns(_spec, TimeType).Select(m => m.Name).Where(m => m != _spec.SurrogateKey)).ToList();

    /// <summary>How the run's source must be unique: by key, or by key and updated_at (several versions a day).</summary>
    public static IReadOnlyList<string> SourceKey(SnapshotSpec spec) =>
        spec.Strategy == SnapshotStrategy.Timestamp ? [.. spec.UniqueKey, spec.UpdatedAt!] : spec.UniqueKey;
}
