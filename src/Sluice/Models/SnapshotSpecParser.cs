using System.Globalization;
using Sluice.Core.Config;

namespace Sluice.Models;

/// <summary>
/// Reads a snapshot model's header keys (docs/reference/models.md), named as dbt's (strategy, updated_at, check_cols,
/// hard_deletes, valid_to_current) with Sluice's earlier names (tracked, absent) kept as aliases; defaults are
/// <see cref="SnapshotSpec"/>'s initialisers.
/// </summary>
public static class SnapshotSpecParser
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference shows them.</summary>
    private static readonly SnapshotSpec Default = OptionDefaults.Of<SnapshotSpec>();

    /// <summary>The keys only a snapshot takes (another kind naming one is an error).</summary>
    public static readonly IReadOnlyList<string> OwnKeys =
        ["tracked", "check_cols", "strategy", "updated_at", "valid_from", "valid_to", "is_current", "absent", "hard_deletes", "valid_to_current", "scd_id", "updated_at_column", "is_deleted"];

    public static SnapshotSpec Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var uniqueKey = map.StringList("unique_key", doc: IncrementalSpecParser.UniqueKeyDoc);
        if (uniqueKey.Count == 0) { map.Error("unique_key", "a snapshot needs unique_key: the column(s) naming what the versions are of"); }
        var surrogate = map.String("surrogate_key", doc: IncrementalSpecParser.SurrogateKeyDoc);
        var strategy = map.Enum("strategy", Default.Strategy, doc: "Snapshot: how a changed key is found: a tracked column's value changed (check), or the updated_at column moved forward (timestamp).");
        var updatedAt = map.String("updated_at", doc: "Snapshot, strategy timestamp (required there): the result's column that moves when the row changes; versions are valid from it.");
        var tracked = Tracked(map);
        var hardDeletes = HardDeletesOf(map);
        if (strategy == SnapshotStrategy.Timestamp)
        {
            if (updatedAt is null) { map.Error("strategy", "strategy timestamp needs updated_at: the column of the result that moves when the row changes"); }
            if (tracked is not null) { map.Error(map.Has("check_cols") ? "check_cols" : "tracked", "only applies to strategy check (the timestamp strategy compares updated_at)"); }
        }
        else if (updatedAt is not null)
        {
            map.Error("updated_at", "only applies to strategy timestamp (add strategy: timestamp)");
        }

        var validToCurrent = map.String("valid_to_current", doc: "Snapshot: valid_to of current versions instead of NULL, a date yyyy-MM-dd (for example 9999-12-31), as dbt's dbt_valid_to_current.");
        if (validToCurrent is not null && !DateOnly.TryParseExact(validToCurrent, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
        {
            map.Error("valid_to_current", $"'{validToCurrent}' is not a date yyyy-MM-dd (for example 9999-12-31)");
        }

        var spec = new SnapshotSpec
        {
            UniqueKey = uniqueKey, Tracked = tracked, SurrogateKey = surrogate, HardDeletes = hardDeletes,
            ValidFrom = map.String("valid_from", Default.ValidFrom, doc: "Snapshot: the column the engine fills with the date a version starts (inclusive).")!,
            ValidTo = map.String("valid_to", Default.ValidTo, doc: "Snapshot: the column the engine fills with the date a version ends (exclusive; NULL while current, or valid_to_current).")!,
            IsCurrent = map.String("is_current", Default.IsCurrent, doc: "Snapshot: the column the engine fills with true for each key's current version.")!,
            Strategy = strategy, UpdatedAt = updatedAt, ValidToCurrent = validToCurrent,
            ScdId = map.String("scd_id", doc: "Snapshot: a column for a hash of the key and valid_from (dbt's dbt_scd_id); none when not given."),
            UpdatedAtColumn = map.String("updated_at_column", doc: "Snapshot: a column for the version's change time (dbt's dbt_updated_at: updated_at, or the run's date); none when not given."),
            IsDeleted = map.String("is_deleted", Default.IsDeleted, doc: "Snapshot with hard_deletes: new_record: the column marking a deleted version.")!,
            OnSchemaChange = map.Enum("on_schema_change", Default.OnSchemaChange, doc: IncrementalSpecParser.OnSchemaChangeDoc),
        };
        if (map.Has("is_deleted") && hardDeletes != HardDeletes.NewRecord) { map.Error("is_deleted", "only applies to hard_deletes: new_record"); }
        ModelFileChecks.PlainColumns(map, "unique_key", uniqueKey.Concat(spec.EngineColumns).Concat(tracked ?? []).Append(updatedAt));
        if (spec.EngineColumns.Distinct(StringComparer.OrdinalIgnoreCase).Count() != spec.EngineColumns.Count)
        {
            map.Error("valid_from", $"the columns the snapshot fills must be different: {string.Join(", ", spec.EngineColumns)}");
        }

        return spec;
    }

    /// <summary>check_cols (alias tracked): null is every column but the key (<c>all</c>).</summary>
    private static IReadOnlyList<string>? Tracked(ConfigMap map)
    {
        const string doc = "Snapshot, strategy check: the columns whose change opens a new version, or all (the default: every column but the key).";
        if (map.Has("tracked") && map.Has("check_cols")) { map.Error("tracked", "tracked is the earlier name of check_cols: give one of them"); }
        if (map.Describing)
        {
            map.StringList("check_cols", doc: doc, fallback: ["all"]);
            map.StringList("tracked", doc: "The earlier name of check_cols.");
            return null;
        }

        var checkKey = map.Has("check_cols") ? "check_cols" : "tracked";
        IReadOnlyList<string>? tracked = map.Has(checkKey) ? map.StringList(checkKey) : null;
        if (tracked is ["all"]) { tracked = null; }
        if (tracked is { Count: 0 }) { map.Error(checkKey, "list the columns whose change opens a new version, or write all"); }
        return tracked;
    }

    private static HardDeletes HardDeletesOf(ConfigMap map)
    {
        var hardDeletes = map.Enum("hard_deletes", Default.HardDeletes, doc: "Snapshot: a key missing from a run's (non-empty) result: keep its version open (ignore), close it (invalidate), or close it and open a version marked deleted (new_record).");
        if (map.String("absent", doc: "The earlier name of hard_deletes: keep (ignore) or close (invalidate).") is not { } absent) { return hardDeletes; }
        if (map.Has("hard_deletes")) { map.Error("absent", "absent is the earlier name of hard_deletes: give one of them (absent: keep is hard_deletes: ignore, absent: close is hard_deletes: invalidate)"); }
        else if (absent == "keep") { return HardDeletes.Ignore; }
        else if (absent == "close") { return HardDeletes.Invalidate; }
        else { map.Error("absent", $"expected keep or close, got '{absent}' (or use hard_deletes: ignore, invalidate or new_record)"); }
        return hardDeletes;
    }
}
