using Microsoft.Extensions.Logging;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Lookup;

/// <summary>The <c>lookup</c> step type.</summary>
public sealed class LookupStepType : IStepType
{
    public string Name => "lookup";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(LookupOptions.Parse(options, recipe));

    private sealed class Factory(LookupOptions options) : IStepFactory, IConnectionCheck, IShapesBatches
    {
        public BatchShape Shape(BatchShape input, ShapeProblems problems) => options.Shape(input, problems);

        public IBatchStep Create(IEngineServices services) =>
            new LookupStep(options, StepLetters.For(services, options.LetterSource), services.Time, services.Logging.CreateLogger("Sluice.Steps"));

        /// <summary>With <c>load: postgres</c>, the dimension table exists with its key and the fields copied.</summary>
        public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) =>
            options.Load == LookupLoad.Postgres && options.Connection is { } connection
                ? Connectors.Postgres.PgPreflight.DimensionAsync(connection, options.Schema, options.Dimension, options.DimensionKey, options.Fields, ct)
                : Task.FromResult<IReadOnlyList<string>>([]);
    }
}

/// <summary>
/// Joins each row of the selected tables with its dimension row by key and adds the dimension's fields (with
/// <c>prefix</c>) before the change envelope. The dimension is held in a bounded cache (<see cref="LookupCache"/>):
/// loaded from Postgres at start and on a miss, and/or kept current by the dimension's own rows in the same stream, which
/// are applied first, in batch order, so a fact sees every dimension change that came before it. A row whose key has no
/// dimension row follows <c>on_miss</c>.
/// </summary>
public sealed class LookupStep : IBatchStep
{
    private readonly LookupOptions _options;
    private readonly StepLetters _letters;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly LookupTable? _table;
    private bool _loaded;
    private long _evictedReported;

    public LookupStep(LookupOptions options, StepLetters letters, TimeProvider time, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _letters = letters;
        _time = time;
        _log = log;
        Cache = new LookupCache(options, options.MaxRows);
        _table = options.Load == LookupLoad.Postgres && options.Connection is not null ? new LookupTable(options, options.Connection) : null;
    }

    public LookupCache Cache { get; }

    /// <summary>Rows whose key had no dimension row (whatever <c>on_miss</c> did with them).</summary>
    public long Misses { get; private set; }

    public async ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (!_loaded && _table is not null)
        {
            await _table.LoadAsync(Cache, _options.MaxRows, ct).ConfigureAwait(false);
            if (!_table.Present) { LookupLog.DimensionAbsent(_log, _options.LetterSource, $"{_options.Schema}.{_options.Dimension}", _options.WaitTimeout.TotalSeconds); }
        }

        _loaded = true;
        var output = new List<ColumnBatch>(batch.Tables.Count);
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table == _options.Dimension) { Cache.Apply(table); output.Add(table); }
            else if (_options.Tables.Tables.Count == 0 || _options.Tables.Takes(table)) { output.Add(await JoinAsync(table, batch.Position, ct).ConfigureAwait(false)); }
            else { output.Add(table); }
        }

        if (Cache.Evicted > _evictedReported && _table is null)
        {
            // Without Postgres behind it an evicted key is gone until its next change: the bound is too small.
            LookupLog.Evicting(_log, _options.LetterSource, Cache.Evicted - _evictedReported, _options.MaxRows);
        }

        _evictedReported = Cache.Evicted;
        return batch with { Tables = output };
    }

    public async Task<ColumnBatch> JoinAsync(ColumnBatch facts, long position, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var at = facts.Schema.IndexOf(_options.Key);
        var keys = new string?[facts.Count];
        for (var row = 0; row < facts.Count; row++) { keys[row] = at < 0 ? null : LookupCache.KeyText(facts.Value(at, row)); }
        var found = new object?[]?[facts.Count];
        Resolve(keys, found);
        if (_table is not null && Missing(keys, found) is { Count: > 0 } missing)
        {
            await _table.FetchAsync(Cache, missing, ct).ConfigureAwait(false);
            Resolve(keys, found);
            if (_options.OnMiss == LookupMiss.Wait)
            {
                var until = _time.GetUtcNow() + _options.WaitTimeout;
                while (Missing(keys, found) is { Count: > 0 } still && _time.GetUtcNow() < until)
                {
                    await Task.Delay(_options.WaitInterval, _time, ct).ConfigureAwait(false);
                    await _table.FetchAsync(Cache, still, ct).ConfigureAwait(false);
                    Resolve(keys, found);
                }
            }
        }

        var keep = new List<int>(facts.Count);
        var failed = new List<(int, string)>();
        for (var row = 0; row < facts.Count; row++)
        {
            if (found[row] is not null) { keep.Add(row); continue; }
            Misses++;
            if (_options.OnMiss == LookupMiss.Keep) { keep.Add(row); continue; }
            failed.Add((row, at < 0 ? $"lookup: the row has no key field {_options.Key}"
                : keys[row] is null ? $"lookup: {_options.Key} is NULL"
                : $"lookup: no {_options.Dimension} row with {_options.DimensionKey} = {keys[row]}{(_options.OnMiss == LookupMiss.Wait ? $" after waiting {_options.WaitTimeout.TotalSeconds:0.#} s" : "")}"));
        }

        _letters.Add(facts, position, failed);
        var kept = keep.Count == facts.Count ? facts : facts.Gather(keep.ToArray());
        var edit = new TableEdit(kept);
        for (var f = 0; f < _options.Fields.Count; f++)
        {
            var values = DimensionValues.ColumnArray(Cache.Types[f], keep.Count);
            for (var i = 0; i < keep.Count; i++)
            {
                if (found[keep[i]] is { } row) { values.SetValue(row[f], i); }
            }

            edit.Set(_options.Prefix + _options.Fields[f], Cache.Types[f], values);
        }

        return edit.Build();
    }

    private void Resolve(string?[] keys, object?[]?[] found)
    {
        for (var row = 0; row < keys.Length; row++)
        {
            if (found[row] is null && keys[row] is { } key) { found[row] = Cache.Find(key); }
        }
    }

    private static HashSet<string> Missing(string?[] keys, object?[]?[] found)
    {
        var missing = new HashSet<string>(StringComparer.Ordinal);
        for (var row = 0; row < keys.Length; row++)
        {
            if (found[row] is null && keys[row] is { } key) { missing.Add(key); }
        }

        return missing;
    }
}

internal static partial class LookupLog
{
    [LoggerMessage(38000, LogLevel.Warning, "{Step}: {Count} dimension rows left the cache because it holds max_rows {MaxRows}; with load: stream they are gone until their next change (misses follow on_miss): raise max_rows")]
    public static partial void Evicting(ILogger logger, string step, long count, int maxRows);

    [LoggerMessage(38500, LogLevel.Warning, "{Step}: dimension table {Table} does not exist yet; with on_miss: wait each miss waits up to {Seconds} s for it, then is dead-lettered")]
    public static partial void DimensionAbsent(ILogger logger, string step, string table, double seconds);
}
