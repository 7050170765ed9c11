using Sluice.Lake;

namespace Sluice.Models;

/// <summary>What a model run did: rows its SELECT produced (in), and rows it wrote or changed (out).</summary>
public sealed record ModelRunResult(long RowsIn, long RowsOut, string Message);

public enum DayStatus
{
    /// <summary>Every model ran as of the day, on the source files named by the fingerprint.</summary>
    Done,

    /// <summary>The day was processed once but must be processed again (an earlier day is being reprocessed).</summary>
    Redo,
}

/// <summary>A day the models were run as of, and the source files they saw (<see cref="Fingerprint"/>).</summary>
public sealed record DayRecord(DateOnly Day, string Fingerprint, DayStatus Status)
{
    /// <summary>Per model run as of the day: the fingerprint of its inputs and definition, and of what it produced.</summary>
    public IReadOnlyDictionary<string, ModelDayRecord> Models { get; init; } = new Dictionary<string, ModelDayRecord>(StringComparer.Ordinal);
}

/// <summary>
/// One model as of one day: <paramref name="Input"/> fingerprints its definition and what it read (see
/// <see cref="ModelDayLedger"/>), <paramref name="Output"/> what it produced, which is what its readers' inputs fingerprint.
/// </summary>
public sealed record ModelDayRecord(string Input, string Output);

/// <summary>
/// An engine the models run on: the embedded warehouse (DuckDB over the Parquet lake) or PostgreSQL. Outside a
/// processing each <see cref="RunAsync"/> is one transaction; inside one, the whole processing is. The model
/// state (the latest as-of date applied) and the day records live in the warehouse itself, committed with the data.
/// </summary>
public interface IWarehouse : IAsyncDisposable
{
    string Engine { get; }

    SqlDialect Dialect { get; }

    /// <summary>Creates schemas, helper functions and state tables, and makes the sources (lake tables) readable as they are in <paramref name="sources"/>.</summary>
    Task PrepareAsync(ModelProject project, SourceSnapshot sources, CancellationToken ct);

    /// <summary>
    /// Starts a processing: what the runs, rewinds and day records write from here on is seen by the runs that follow
    /// but published only by <see cref="CommitProcessingAsync"/>, all at once; a processing never committed (a failed
    /// model, a crash) leaves every table, state and day record exactly as it was.
    /// </summary>
    Task BeginProcessingAsync(CancellationToken ct);

    Task CommitProcessingAsync(CancellationToken ct);

    Task<ModelRunResult> RunAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct);

    /// <summary>Undoes what runs as of <paramref name="from"/> or later did to the model (everything, for a model that cannot rewind by date).</summary>
    Task RewindAsync(ModelProject project, ModelDefinition model, DateOnly from, CancellationToken ct);

    /// <summary>The latest as-of date the model was run for (null: never, or rewound past its first run).</summary>
    Task<DateOnly?> AppliedThroughAsync(ModelDefinition model, CancellationToken ct);

    Task<IReadOnlyList<DayRecord>> DaysAsync(CancellationToken ct);

    Task SaveDaysAsync(IReadOnlyCollection<DayRecord> days, CancellationToken ct);

    /// <summary>
    /// A fingerprint of what the model's readers see of it as of the day (its partition of the day for a partition or
    /// clean model, the whole table otherwise; not a clean model's rejects): a count and an order-free sum of row hashes.
    /// </summary>
    Task<string> ContentAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct);

    /// <summary>Runs a read-only query; at most <paramref name="maxRows"/> rows come back.</summary>
    Task<QueryResult> QueryAsync(string sql, int maxRows, CancellationToken ct);
}
