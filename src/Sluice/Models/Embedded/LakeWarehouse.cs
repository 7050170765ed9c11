using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Embedded;

/// <summary>
/// The embedded warehouse: models computed by an in-memory DuckDB over the Parquet lake. A model's output is a lake
/// table whose files are replaced through one manifest commit (the whole table, or the partitions a run owns), with the
/// model's state in the same metadata transaction; a view model is stored SQL that every query session creates. One
/// DuckDB session serves a whole processing: sources are pinned to the files of the <see cref="SourceSnapshot"/>, and
/// each committed model's view is refreshed in it for the models that follow.
/// </summary>
internal sealed partial class LakeWarehouse : IWarehouse
{
    private readonly IEngineServices _services;
    private readonly LakeModelState _state;
    private readonly string _scope;
    private DuckDBConnection? _db;
    private PendingLakeCommit? _pending;

    public LakeWarehouse(IEngineServices services, string scope)
    {
        _services = services;
        _scope = scope;
        _state = new LakeModelState(services.Metadata, scope);
        _state.Migrate();
    }

    public string Engine => "duckdb";

    public SqlDialect Dialect => SqlDialect.DuckDb;

    private DuckDBConnection Db => _db ?? throw new InvalidOperationException("PrepareAsync first");

    private LakeStore Lake => _services.Lake;

    public Task PrepareAsync(ModelProject project, SourceSnapshot sources, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(sources);
        var owners = _state.Claim(project.Models.Select(m => m.Name).ToList(), _services.Time.GetUtcNow());
        ModelTableClaims.ThrowIfTaken(project, _scope, owners, $"the data folder {_services.Data.Root}");
        _db?.Dispose();
        _db = Sluice.Lake.DuckDb.OpenMemory(Path.Combine(_services.Data.Root, "tmp", "duckdb"));
        var pinned = sources.Tables.ToDictionary(t => t.Table.QualifiedName, t => t.Files.Select(f => f.Path).ToList(), StringComparer.Ordinal);
        foreach (var table in Lake.Tables())
        {
            var select = pinned.TryGetValue(table.QualifiedName, out var files) ? LakeQueryEngine.SourceOf(table, files) : _services.Query.Source(table);
            Exec($"CREATE SCHEMA IF NOT EXISTS {Quote(table.Zone)}");
            Exec($"CREATE OR REPLACE VIEW {QuoteName(table.QualifiedName)} AS {select}");
        }

        LakeQueryEngine.CreateStoredViews(Db, Lake.Views.All());
        return Task.CompletedTask;
    }

    public Task BeginProcessingAsync(CancellationToken ct)
    {
        _pending?.Dispose();
        _pending = new PendingLakeCommit(Lake.BeginStaging("models-processing"));
        return Task.CompletedTask;
    }

    public Task CommitProcessingAsync(CancellationToken ct)
    {
        var pending = _pending ?? throw new InvalidOperationException("BeginProcessingAsync first");
        var now = _services.Time.GetUtcNow();
        pending.Publish(Lake, (c, tx) =>
        {
            foreach (var (model, applied) in pending.Applied) { _state.SetApplied(c, tx, model, applied, now); }
            foreach (var (name, sql) in pending.Views)
            {
                if (sql is null) { Lake.Views.Drop(c, tx, name); }
                else { Lake.Views.Save(c, tx, name, sql, now); }
            }

            _state.SaveDays(c, tx, pending.Days.Values, now);
        });
        _pending = null;
        return Task.CompletedTask;
    }

    public Task<ModelRunResult> RunAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        ct.ThrowIfCancellationRequested();
        try
        {
            Exec($"CREATE SCHEMA IF NOT EXISTS {Quote(model.Schema)}");
            var result = model.Kind switch
            {
                ModelKind.Table => RunTable(model, asOf),
                ModelKind.View => RunView(model, asOf),
                ModelKind.Incremental when model.Incremental!.IsPartition => RunPartition(model, asOf),
                ModelKind.Incremental => RunMerge(model, asOf),
                ModelKind.Snapshot => RunSnapshot(model, asOf),
                ModelKind.Clean => RunClean(project, model, asOf),
                _ => throw new ArgumentOutOfRangeException(nameof(model)),
            };
            return Task.FromResult(result);
        }
        catch (DuckDBException e)
        {
            throw new SluiceException($"{model.Name} ({model.File}) failed on duckdb: {e.Message}", e);
        }
        finally
        {
            DropTemp();
        }
    }

    public Task RewindAsync(ModelProject project, ModelDefinition model, DateOnly from, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        try
        {
            switch (model.Kind)
            {
                case ModelKind.Snapshot: RewindSnapshot(model, from); break;
                case ModelKind.Clean: RewindClean(project, model, from); break;
                case ModelKind.Incremental when model.Incremental!.IsPartition: RewindPartitions(model, from); break;
                case ModelKind.Incremental: RewindMerge(model, from); break;
                default: break;
            }
        }
        catch (DuckDBException e)
        {
            throw new SluiceException($"{model.Name}: rewinding to {from:yyyy-MM-dd} failed on duckdb: {e.Message}", e);
        }
        finally
        {
            DropTemp();
        }

        return Task.CompletedTask;
    }

    public Task<DateOnly?> AppliedThroughAsync(ModelDefinition model, CancellationToken ct) =>
        Task.FromResult(_pending is not null && _pending.Applied.TryGetValue(model.Name, out var pending) ? pending : _state.AppliedThrough(model.Name));

    public Task<IReadOnlyList<DayRecord>> DaysAsync(CancellationToken ct) => Task.FromResult(_state.Days());

    public Task SaveDaysAsync(IReadOnlyCollection<DayRecord> days, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(days);
        if (_pending is not null)
        {
            foreach (var d in days) { _pending.Days[d.Day] = d; }
            return Task.CompletedTask;
        }

        using var fence = Jobs.JobFence.Hold();
        _state.SaveDays(days, _services.Time.GetUtcNow());
        return Task.CompletedTask;
    }

    public Task<string> ContentAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        if (!HasRelation(model.Name)) { return Task.FromResult("absent"); }
        var where = model.PartitionColumn is { } column ? $" WHERE {Quote(column)} = {Date(asOf)}" : "";
        // Each row hashed as a struct and summed (HUGEINT): independent of row order and of how files split the rows.
        using var cmd = Db.CreateCommand();
        cmd.CommandText = $"SELECT count(*) || ':' || coalesce(sum(hash(t)), 0) FROM {QuoteName(model.Name)} t{where}";
        return Task.FromResult(Convert.ToString(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "");
    }

    public Task<QueryResult> QueryAsync(string sql, int maxRows, CancellationToken ct)
    {
        using var cmd = Db.CreateCommand();
        cmd.CommandText = sql;
        try
        {
            using var reader = cmd.ExecuteReader();
            return Task.FromResult(QueryResult.Read(reader, maxRows));
        }
        catch (DuckDBException e)
        {
            throw new SluiceException($"query failed on duckdb: {e.Message}", e);
        }
    }

    public ValueTask DisposeAsync()
    {
        _pending?.Dispose();
        _pending = null;
        _db?.Dispose();
        _db = null;
        return ValueTask.CompletedTask;
    }

    // ---- helpers shared by the kinds

    private void Exec(string sql) => LakeQueryEngine.Exec(Db, sql);

    private long Count(string sql)
    {
        using var cmd = Db.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private List<(string Name, string Type)> Describe(string relationOrSelect)
    {
        using var cmd = Db.CreateCommand();
        cmd.CommandText = relationOrSelect.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) || relationOrSelect.TrimStart().StartsWith("WITH", StringComparison.OrdinalIgnoreCase)
            ? $"DESCRIBE {relationOrSelect}"
            : $"DESCRIBE SELECT * FROM {relationOrSelect}";
        using var r = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (r.Read()) { list.Add((r.GetString(0), r.GetString(1))); }
        return list;
    }

    private bool HasRelation(string qualified)
    {
        var dot = qualified.IndexOf('.', StringComparison.Ordinal);
        return Count($"SELECT count(*) FROM duckdb_views() WHERE NOT internal AND schema_name = {Literal(qualified[..dot])} AND view_name = {Literal(qualified[(dot + 1)..])}") > 0;
    }

    /// <summary>Writes a SELECT into one staged Parquet file, forced to disk; returns the file and its row count.</summary>
    private (string Path, long Rows) Copy(LakeStager stager, string select)
    {
        var path = stager.NextPath();
        Exec($"COPY ({select}) TO {Literal(path)} (FORMAT parquet)");
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            f.Flush(flushToDisk: true);
        }

        return (path, Count($"SELECT count(*) FROM read_parquet({Literal(path)})"));
    }

    /// <summary>Every partition a table holds now, to replace it as a whole.</summary>
    private List<(LakeTable, string)> AllPartitions(LakeTable table) =>
        Partitions(table.QualifiedName).Select(p => (table, p)).Append((table, "")).Distinct().ToList();

    /// <summary>A table's files as this session sees them (in a processing: with what it has written so far).</summary>
    private IReadOnlyList<LakeFileEntry> Files(string table) => _pending?.Current(Lake, table) ?? Lake.FileEntries(table);

    private List<string> Partitions(string table) => Files(table).Select(f => f.Partition).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>Publishes the staged files with the model's state (and anything else) in one metadata transaction, then refreshes the session's view.</summary>
    private void Commit(LakeStager stager, ModelDefinition model, DateOnly? applied, IReadOnlyCollection<(LakeTable, string)> replace, params LakeTable[] refresh)
    {
        if (_pending is not null)
        {
            _pending.Add(stager, replace);
            _pending.Applied[model.Name] = applied;
            if (model.Kind != ModelKind.View) { _pending.Views[model.Name] = null; }
        }
        else
        {
            var now = _services.Time.GetUtcNow();
            // On a cluster the run's lease is checked and held through the commit (as a processing's, DayProcessor).
            using var fence = Jobs.JobFence.Hold();
            Lake.Commit(
                stager,
                (c, tx) =>
                {
                    _state.SetApplied(c, tx, model.Name, applied, now);
                    if (model.Kind != ModelKind.View) { Lake.Views.Drop(c, tx, model.Name); }
                },
                replace);
        }

        foreach (var table in refresh)
        {
            Exec($"CREATE SCHEMA IF NOT EXISTS {Quote(table.Zone)}");
            Exec($"CREATE OR REPLACE VIEW {QuoteName(table.QualifiedName)} AS {LakeQueryEngine.SourceOf(table, Files(table.QualifiedName).Select(f => f.Path).ToList())}");
        }
    }

    private void SaveState(ModelDefinition model, DateOnly? applied)
    {
        if (_pending is not null) { _pending.Applied[model.Name] = applied; return; }
        using var fence = Jobs.JobFence.Hold();
        using var c = _services.Metadata.Connect();
        using var tx = c.BeginTransaction();
        _state.SetApplied(c, tx, model.Name, applied, _services.Time.GetUtcNow());
        tx.Commit();
    }

    private LakeTable? Registered(string name) => Lake.Table(name);

    private static List<FieldSpec> Fields(IEnumerable<(string Name, string Type)> columns) =>
        columns.Select(c => new FieldSpec(c.Name, FieldTypeOf(c.Type), false)).ToList();

    /// <summary>The lake registry's type for a DuckDB type (used only to type an empty table's view).</summary>
    internal static FieldType FieldTypeOf(string duckType)
    {
        var t = duckType.ToUpperInvariant();
        if (t is "VARCHAR" or "TEXT" or "UUID" or "BLOB") { return FieldType.String; }
        if (t.EndsWith("INT", StringComparison.Ordinal) || t is "BIGINT" or "INTEGER" or "SMALLINT" or "TINYINT" or "HUGEINT" or "UBIGINT" or "UINTEGER" or "USMALLINT" or "UTINYINT") { return FieldType.Integer; }
        if (t.StartsWith("DECIMAL", StringComparison.Ordinal) || t is "DOUBLE" or "FLOAT" or "REAL") { return FieldType.Double; }
        if (t == "BOOLEAN") { return FieldType.Boolean; }
        if (t == "DATE") { return FieldType.Date; }
        if (t.StartsWith("TIMESTAMP", StringComparison.Ordinal)) { return FieldType.Timestamp; }
        return FieldType.String;
    }

    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private void DropTemp()
    {
        if (_db is null) { return; }
        foreach (var t in new[] { "_out", "_src", "_clean", "_new", "_tgt", "_cand", "_close", "_open" })
        {
            try { Exec($"DROP TABLE IF EXISTS temp.{t}"); }
            catch (DuckDBException) { /* the session is broken anyway; the next Prepare opens a new one */ }
        }
    }
}
