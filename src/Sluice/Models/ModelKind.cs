namespace Sluice.Models;

/// <summary>How a model's result becomes a relation of the warehouse.</summary>
public enum ModelKind
{
    /// <summary>Rebuilt entirely by every run, replacing the previous table atomically.</summary>
    Table,

    /// <summary>A view: the SQL is stored and read at query time.</summary>
    View,

    /// <summary>Each run merges its rows: by <c>unique_key</c> (keyed merge), or by owning one date partition (<c>partition_by</c>).</summary>
    Incremental,

    /// <summary>Slowly changing dimension, type 2: a change of a tracked column closes the current version and opens a new one.</summary>
    Snapshot,

    /// <summary>Declared cleaning rules (YAML) over a raw table: clean rows to the model's table, rejects with their reason to the quarantine.</summary>
    Clean,
}

/// <summary>What a snapshot does with a key that is missing from a run's (non-empty) source, as dbt's <c>hard_deletes</c>.</summary>
public enum HardDeletes
{
    /// <summary>Keep its current version open: the source may list only new and changed keys (<c>absent: keep</c>).</summary>
    Ignore,

    /// <summary>Close its current version at the run's date: the source is a full snapshot (<c>absent: close</c>).</summary>
    Invalidate,

    /// <summary>Close its current version and open a version marked deleted (is_deleted), which closes when the key returns.</summary>
    NewRecord,
}

/// <summary>How a snapshot detects a changed key, as dbt's <c>strategy</c>.</summary>
public enum SnapshotStrategy
{
    /// <summary>A tracked column's value changed (<c>check_cols</c>, default all); versions are valid from the run's date.</summary>
    Check,

    /// <summary>The <c>updated_at</c> column moved forward; versions are valid from it, so one day may bring several.</summary>
    Timestamp,
}

/// <summary>What a stateful model does when its result's columns differ from its stored table, as dbt's <c>on_schema_change</c>.</summary>
public enum OnSchemaChange
{
    /// <summary>New columns are added (NULL in older rows); columns the result lost stay, NULL in newer rows; a retyped column is an error.</summary>
    AppendNewColumns,

    /// <summary>The table follows the result: new columns added, lost ones dropped, retyped ones converted.</summary>
    SyncAllColumns,

    /// <summary>Any difference stops the run with the list of differences.</summary>
    Fail,
}

/// <summary>
/// Options of an <see cref="ModelKind.Incremental"/> model (<see cref="IncrementalSpecParser"/> reads them from the
/// model's header; a default is the property's initialiser).
/// </summary>
public sealed record IncrementalSpec
{
    /// <summary>Keyed merge: the run's rows replace the rows with the same key (empty with <see cref="PartitionBy"/>).</summary>
    public required IReadOnlyList<string> UniqueKey { get; init; }

    /// <summary>Date column: a run as of D owns the rows whose column is D, and replaces them all.</summary>
    public string? PartitionBy { get; init; }

    /// <summary>For a keyed merge: a date column holding the as-of date of the run that wrote the row, so a reprocessing from D can remove what runs on or after D wrote.</summary>
    public string? RewindBy { get; init; }

    /// <summary>A BIGINT column the engine fills for new keys (max + 1, in key order); kept for existing keys.</summary>
    public string? SurrogateKey { get; init; }

    /// <summary>For a keyed merge: true replaces rows whose key exists; false keeps them and only inserts new keys.</summary>
    public bool UpdateExisting { get; init; } = true;

    public OnSchemaChange OnSchemaChange { get; init; } = OnSchemaChange.AppendNewColumns;

    public bool IsPartition => PartitionBy is not null;

    /// <summary>Whether a run as of D can be undone for every date from D on without replaying from the first day.</summary>
    public bool CanRewindByDate => IsPartition || (RewindBy is not null && !UpdateExisting);
}

/// <summary>
/// Options of a <see cref="ModelKind.Snapshot"/> model (SCD2). The source returns the state of each key as of the run's
/// date. <see cref="SnapshotSpecParser"/> reads them from the model's header; a default is the property's initialiser.
/// </summary>
public sealed record SnapshotSpec
{
    public required IReadOnlyList<string> UniqueKey { get; init; }

    /// <summary>The check strategy's columns (<c>check_cols</c>, alias <c>tracked</c>); null: every column but the key.</summary>
    public IReadOnlyList<string>? Tracked { get; init; }

    public string? SurrogateKey { get; init; }

    public string ValidFrom { get; init; } = "valid_from";

    public string ValidTo { get; init; } = "valid_to";

    public string IsCurrent { get; init; } = "is_current";

    public HardDeletes HardDeletes { get; init; } = HardDeletes.Ignore;

    public SnapshotStrategy Strategy { get; init; } = SnapshotStrategy.Check;

    /// <summary>The timestamp strategy's column of the result (when the row last changed).</summary>
    public string? UpdatedAt { get; init; }

    /// <summary>valid_to of current versions instead of NULL (a date, <c>yyyy-MM-dd</c>), as dbt's <c>dbt_valid_to_current</c>.</summary>
    public string? ValidToCurrent { get; init; }

    /// <summary>Column for a hash of the key and valid_from (dbt's <c>dbt_scd_id</c>); null: none.</summary>
    public string? ScdId { get; init; }

    /// <summary>Column for the version's change time (dbt's <c>dbt_updated_at</c>): updated_at, or the run's date; null: none.</summary>
    public string? UpdatedAtColumn { get; init; }

    /// <summary>Column marking a deleted version, with <see cref="HardDeletes.NewRecord"/>.</summary>
    public string IsDeleted { get; init; } = "is_deleted";

    public OnSchemaChange OnSchemaChange { get; init; } = OnSchemaChange.AppendNewColumns;

    /// <summary>The columns the snapshot fills itself, which the SELECT may not have.</summary>
    public IReadOnlyList<string> EngineColumns =>
        new[] { SurrogateKey, ValidFrom, ValidTo, IsCurrent, HardDeletes == HardDeletes.NewRecord ? IsDeleted : null, ScdId, UpdatedAtColumn }.OfType<string>().ToList();
}
