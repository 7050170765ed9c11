using Sluice.Core;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models;

/// <summary>
/// The pieces of an SCD2 merge, shared by the engines. With the target's current versions <c>c</c> and the run's
/// source rows <c>s</c> (one per key): a current version closes when its key's tracked values changed, or (policy
/// <see cref="AbsentPolicy.Close"/>) when its key is absent from the source; a new version opens for every source key
/// without a current version or whose tracked values changed. Closing sets valid_to to the run's date (exclusive
/// end) and is_current to false; a new version is valid from the run's date, with a NULL valid_to.
/// </summary>
internal sealed class SnapshotSql(ModelDefinition model, IReadOnlyList<string> sourceColumns, IReadOnlyList<string> tracked, string target, string source, string date)
{
    private readonly SnapshotSpec _spec = model.Snapshot!;

    public static IReadOnlyList<string> Tracked(ModelDefinition model, IReadOnlyList<string> columns)
    {
        var spec = model.Snapshot!;
        foreach (var t in (spec.Tracked ?? []).Where(t => !columns.Contains(t, StringComparer.Ordinal)))
        {
            throw new SluiceException($"{model.Name}: tracked column '{t}' is not in the result (columns: {string.Join(", ", columns)})");
        }

        var list = spec.Tracked ?? columns.Where(c => !spec.UniqueKey.Contains(c, StringComparer.Ordinal)).ToList();
        return list.Count > 0 ? list : throw new SluiceException($"{model.Name}: a snapshot needs at least one tracked column besides the key");
    }

    public string On(string a, string b) => string.Join(" AND ", _spec.UniqueKey.Select(k => $"{a}.{Quote(k)} = {b}.{Quote(k)}"));

    public string Changed(string c, string s) => "(" + string.Join(" OR ", tracked.Select(t => $"{c}.{Quote(t)} IS DISTINCT FROM {s}.{Quote(t)}")) + ")";

    public string Key0 => Quote(_spec.UniqueKey[0]);

    public string IsCurrent => Quote(_spec.IsCurrent);

    /// <summary>For a target row <c>c</c> joined (left) to the source <c>s</c>: whether this run closes it.</summary>
    public string Closing =>
        $"(c.{IsCurrent} AND ((s.{Key0} IS NOT NULL AND {Changed("c", "s")})" + (_spec.Absent == AbsentPolicy.Close ? $" OR s.{Key0} IS NULL" : "") + "))";

    /// <summary>For a source row <c>s</c> joined (left) to the current versions <c>c</c>: whether it opens a version.</summary>
    public string Opening => $"(c.{Key0} IS NULL OR {Changed("c", "s")})";

    /// <summary>Every target row, the closed ones with their new valid_to and is_current, marked <c>_closed</c> when this run closed them (and <c>_opened</c> false).</summary>
    public string KeptAndClosedMarked =>
        $"SELECT c.* REPLACE (CASE WHEN {Closing} THEN {date} ELSE c.{Quote(_spec.ValidTo)} END AS {Quote(_spec.ValidTo)}, " +
        $"CASE WHEN {Closing} THEN FALSE ELSE c.{IsCurrent} END AS {IsCurrent}), {Closing} AS _closed, FALSE AS _opened FROM {target} c LEFT JOIN {source} s ON {On("c", "s")}";

    /// <summary>The new versions, surrogate keys following the highest one in key order.</summary>
    public string Opened
    {
        get
        {
            var key = _spec.SurrogateKey is { } sk
                ? $"CAST((SELECT COALESCE(max({Quote(sk)}), 0) FROM {target}) + row_number() OVER (ORDER BY {string.Join(", ", _spec.UniqueKey.Select(k => $"s.{Quote(k)}"))}) AS BIGINT) AS {Quote(sk)}, "
                : "";
            return $"SELECT {key}{string.Join(", ", sourceColumns.Select(n => $"s.{Quote(n)}"))}, {date} AS {Quote(_spec.ValidFrom)}, " +
                   $"CAST(NULL AS DATE) AS {Quote(_spec.ValidTo)}, TRUE AS {IsCurrent} " +
                   $"FROM {source} s LEFT JOIN {target} c ON {On("c", "s")} AND c.{IsCurrent} WHERE {Opening}";
        }
    }
}
