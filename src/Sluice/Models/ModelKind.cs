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

/// <summary>What a snapshot does with a key that is missing from a run's (full) source.</summary>
public enum AbsentPolicy
{
    /// <summary>Keep its current version open: the source may list only new and changed keys.</summary>
    Keep,

    /// <summary>Close its current version at the run's date: the source is a full snapshot.</summary>
    Close,
}

/// <summary>Options of an <see cref="ModelKind.Incremental"/> model.</summary>
/// <param name="UniqueKey">Keyed merge: the run's rows replace the rows with the same key (empty with <paramref name="PartitionBy"/>).</param>
/// <param name="PartitionBy">Date column: a run as of D owns the rows whose column is D, and replaces them all.</param>
/// <param name="RewindBy">For a keyed merge: a date column holding the as-of date of the run that wrote the row, so a reprocessing from D can remove what runs on or after D wrote.</param>
/// <param name="SurrogateKey">A BIGINT column the engine fills for new keys (max + 1, in key order); kept for existing keys.</param>
/// <param name="UpdateExisting">For a keyed merge: true replaces rows whose key exists; false keeps them and only inserts new keys.</param>
public sealed record IncrementalSpec(IReadOnlyList<string> UniqueKey, string? PartitionBy, string? RewindBy, string? SurrogateKey, bool UpdateExisting)
{
    public bool IsPartition => PartitionBy is not null;

    /// <summary>Whether a run as of D can be undone for every date from D on without replaying from the first day.</summary>
    public bool CanRewindByDate => IsPartition || (RewindBy is not null && !UpdateExisting);
}

/// <summary>Options of a <see cref="ModelKind.Snapshot"/> model (SCD2). The source returns the state of each key as of the run's date.</summary>
public sealed record SnapshotSpec(
    IReadOnlyList<string> UniqueKey, IReadOnlyList<string>? Tracked, string? SurrogateKey,
    string ValidFrom, string ValidTo, string IsCurrent, AbsentPolicy Absent);
