using System.Globalization;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Lake;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Postgres;

/// <summary>
/// Models on PostgreSQL: real schemas (<c>raw</c>, <c>staging</c>, <c>dw</c>, <c>mart</c>, as the models name them)
/// in the configured database, every model run in one transaction with its state (schema <c>sluice</c>). Sources are
/// the lake tables, copied partition by partition into same-named PostgreSQL tables when their files change, so the
/// lake stays the landing zone and PostgreSQL is the warehouse.
/// </summary>
internal sealed partial class PostgresWarehouse : IWarehouse
{
    internal static readonly string[] StateDdl =
    [
        "CREATE SCHEMA IF NOT EXISTS sluice",
        "CREATE TABLE IF NOT EXISTS sluice.model_state (scope TEXT NOT NULL, model TEXT NOT NULL, applied_through DATE NULL, updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (scope, model))",
        "CREATE TABLE IF NOT EXISTS sluice.model_days (scope TEXT NOT NULL, day DATE NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (scope, day))",
        "ALTER TABLE sluice.model_days ADD COLUMN IF NOT EXISTS models TEXT NULL",
        "CREATE TABLE IF NOT EXISTS sluice.model_tables (table_name TEXT PRIMARY KEY, scope TEXT NOT NULL, claimed_at TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE IF NOT EXISTS sluice.source_partitions (table_name TEXT NOT NULL, partition_value TEXT NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (table_name, partition_value))",
        // The same title_case as the embedded warehouse's macro (DuckDbMacros.TitleCase): a word starts the text or follows a space, '-' or an apostrophe.
        """
        CREATE OR REPLACE FUNCTION sluice.title_case(s TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
        DECLARE r TEXT := ''; prev TEXT := ' '; ch TEXT; l TEXT := lower(s);
        BEGIN
          IF s IS NULL THEN RETURN NULL; END IF;
          FOR i IN 1..char_length(l) LOOP
            ch := substr(l, i, 1);
            IF prev IN (' ', '-', '''') THEN r := r || upper(ch); ELSE r := r || ch; END IF;
            prev := ch;
          END LOOP;
          RETURN r;
        END $$
        """,
    ];

    private readonly IEngineServices _services;
    private readonly string _scope;
    private readonly NpgsqlConnectionStringBuilder _settings;
    private NpgsqlConnection? _connection;
    private NpgsqlTransaction? _processing;

    public PostgresWarehouse(IEngineServices services, string scope, NpgsqlConnectionStringBuilder settings)
    {
        _services = services;
        _scope = scope;
        // JIT compiling a model's plan costs seconds and rarely pays back on statements that run once a day.
        _settings = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { SearchPath = "public,sluice", CommandTimeout = 0, Options = "-c jit=off" };
    }

    public string Engine => "postgres";

    public SqlDialect Dialect => SqlDialect.Postgres;

    public string Where => PostgresConnectionOptions.Describe(_settings);

    private NpgsqlConnection Connection => _connection ?? throw new InvalidOperationException("PrepareAsync first");

    public async Task PrepareAsync(ModelProject project, SourceSnapshot sources, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(sources);
        await OpenAsync(ct).ConfigureAwait(false);
        await InTransactionAsync(async tx =>
        {
            // Two processes preparing the same database at once would collide on CREATE OR REPLACE FUNCTION.
            await ExecAsync("SELECT pg_advisory_xact_lock(7305147316514023)", tx, ct).ConfigureAwait(false);
            foreach (var sql in StateDdl) { await ExecAsync(sql, tx, ct).ConfigureAwait(false); }
            await ClaimTablesAsync(project, tx, ct).ConfigureAwait(false);
            var schemas = project.Models.Select(m => m.Schema).Concat(project.Sources.Select(s => s[..s.IndexOf('.', StringComparison.Ordinal)]))
                .Append(project.Quarantine[..project.Quarantine.IndexOf('.', StringComparison.Ordinal)]).Distinct(StringComparer.Ordinal);
            foreach (var schema in schemas) { await ExecAsync($"CREATE SCHEMA IF NOT EXISTS {Quote(schema)}", tx, ct).ConfigureAwait(false); }
            return 0;
        }, ct).ConfigureAwait(false);
        await new PgSourceMirror(Connection, _services).SyncAsync(sources, ct).ConfigureAwait(false);
    }

    /// <summary>Claims the project's tables for this scope in this database (<see cref="ModelTableClaims"/>); throws, claiming nothing, when another scope owns one.</summary>
    private async Task ClaimTablesAsync(ModelProject project, NpgsqlTransaction tx, CancellationToken ct)
    {
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var cmd = new NpgsqlCommand("SELECT table_name, scope FROM sluice.model_tables", Connection, tx))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false)) { owners[r.GetString(0)] = r.GetString(1); }
        }

        ModelTableClaims.ThrowIfTaken(project, _scope, owners, $"the PostgreSQL warehouse {Where}");
        await using var insert = new NpgsqlCommand(
            "INSERT INTO sluice.model_tables(table_name, scope, claimed_at) SELECT t, $2, now() FROM unnest($1::text[]) t ON CONFLICT (table_name) DO NOTHING", Connection, tx);
        insert.Parameters.AddWithValue(project.Models.Select(m => m.Name).ToArray());
        insert.Parameters.AddWithValue(_scope);
        await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task OpenAsync(CancellationToken ct)
    {
        if (_connection is not null) { return; }
        var connection = new NpgsqlConnection(_settings.ConnectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new SluiceException($"cannot reach the PostgreSQL warehouse {Where}: {e.Message} (settings come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)", e);
        }

        _connection = connection;
    }

    public async Task BeginProcessingAsync(CancellationToken ct)
    {
        if (_processing is not null) { await _processing.DisposeAsync().ConfigureAwait(false); }
        _processing = await Connection.BeginTransactionAsync(ct).ConfigureAwait(false);
    }

    public async Task CommitProcessingAsync(CancellationToken ct)
    {
        var tx = _processing ?? throw new InvalidOperationException("BeginProcessingAsync first");
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await tx.DisposeAsync().ConfigureAwait(false);
        _processing = null;
    }

    public async Task<ModelRunResult> RunAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        try
        {
            return await InTransactionAsync(async tx =>
            {
                var result = model.Kind switch
                {
                    ModelKind.Table => await RunTableAsync(model, asOf, tx, ct).ConfigureAwait(false),
                    ModelKind.View => await RunViewAsync(model, asOf, tx, ct).ConfigureAwait(false),
                    ModelKind.Incremental when model.Incremental!.IsPartition => await RunPartitionAsync(model, asOf, tx, ct).ConfigureAwait(false),
                    ModelKind.Incremental => await RunMergeAsync(model, asOf, tx, ct).ConfigureAwait(false),
                    ModelKind.Snapshot => await RunSnapshotAsync(model, asOf, tx, ct).ConfigureAwait(false),
                    ModelKind.Clean => await RunCleanAsync(project, model, asOf, tx, ct).ConfigureAwait(false),
                    _ => throw new ArgumentOutOfRangeException(nameof(model)),
                };
                await SetAppliedAsync(model, asOf, tx, ct).ConfigureAwait(false);
                await AnalyzeAsync(project, model, result, tx, ct).ConfigureAwait(false);
                return result;
            }, ct).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new SluiceException($"{model.Name} ({model.File}) failed on postgres: {e.MessageText}{(e.Detail is null ? "" : $" ({e.Detail})")}", e);
        }
    }

    public async Task RewindAsync(ModelProject project, ModelDefinition model, DateOnly from, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        try
        {
            await InTransactionAsync(async tx =>
            {
                var f = Date(from);
                var target = QuoteName(model.Name);
                var exists = await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false) == 'r';
                DateOnly? applied = from.AddDays(-1);
                switch (model.Kind)
                {
                    case ModelKind.Snapshot when exists && !model.CanRewindByDate:
                        await ExecAsync($"DELETE FROM {target}", tx, ct).ConfigureAwait(false);
                        applied = null;
                        break;
                    case ModelKind.Snapshot when exists:
                        var s = model.Snapshot!;
                        var currentEnd = s.ValidToCurrent is { } v ? $"DATE {Literal(v)}" : "NULL";
                        await ExecAsync($"DELETE FROM {target} WHERE {Quote(s.ValidFrom)} >= {f}", tx, ct).ConfigureAwait(false);
                        await ExecAsync($"UPDATE {target} SET {Quote(s.ValidTo)} = {currentEnd}, {Quote(s.IsCurrent)} = TRUE WHERE {Quote(s.ValidTo)} >= {f}", tx, ct).ConfigureAwait(false);
                        break;
                    case ModelKind.Incremental when exists && model.Incremental!.IsPartition:
                        await ExecAsync($"DELETE FROM {target} WHERE {Quote(model.Incremental.PartitionBy!)} >= {f}", tx, ct).ConfigureAwait(false);
                        break;
                    case ModelKind.Incremental when exists:
                        if (model.CanRewindByDate) { await ExecAsync($"DELETE FROM {target} WHERE {Quote(model.Incremental!.RewindBy!)} >= {f}", tx, ct).ConfigureAwait(false); }
                        else { await ExecAsync($"DELETE FROM {target}", tx, ct).ConfigureAwait(false); applied = null; }
                        break;
                    case ModelKind.Clean:
                        if (exists) { await ExecAsync($"DELETE FROM {target} WHERE file_date >= {f}", tx, ct).ConfigureAwait(false); }
                        if (await RelationKindAsync(project.Quarantine, tx, ct).ConfigureAwait(false) == 'r')
                        {
                            await ExecAsync($"DELETE FROM {QuoteName(project.Quarantine)} WHERE model = {Literal(model.Name)} AND file_date >= {f}", tx, ct).ConfigureAwait(false);
                        }

                        break;
                    default:
                        break;
                }

                await SetAppliedAsync(model, applied, tx, ct).ConfigureAwait(false);
                return 0;
            }, ct).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new SluiceException($"{model.Name}: rewinding to {from:yyyy-MM-dd} failed on postgres: {e.MessageText}", e);
        }
    }

    public async Task<DateOnly?> AppliedThroughAsync(ModelDefinition model, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT applied_through FROM sluice.model_state WHERE scope = $1 AND model = $2", Connection);
        cmd.Parameters.AddWithValue(_scope);
        cmd.Parameters.AddWithValue(model.Name);
        var value = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return value is DateTime d ? DateOnly.FromDateTime(d) : value is DateOnly o ? o : null;
    }

    public async Task<IReadOnlyList<DayRecord>> DaysAsync(CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT day, fingerprint, status, models FROM sluice.model_days WHERE scope = $1 ORDER BY day", Connection);
        cmd.Parameters.AddWithValue(_scope);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<DayRecord>();
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            list.Add(new DayRecord(r.GetFieldValue<DateOnly>(0), r.GetString(1), Enum.Parse<DayStatus>(r.GetString(2), true))
            {
                Models = ModelDayCodec.Read(r.IsDBNull(3) ? null : r.GetString(3)),
            });
        }

        return list;
    }

    public async Task SaveDaysAsync(IReadOnlyCollection<DayRecord> days, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(days);
        await InTransactionAsync(async tx =>
        {
            foreach (var d in days)
            {
                await using var cmd = new NpgsqlCommand(
                    "INSERT INTO sluice.model_days(scope, day, fingerprint, status, updated_at, models) VALUES ($1, $2, $3, $4, now(), $5) " +
                    "ON CONFLICT (scope, day) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, updated_at = excluded.updated_at, models = excluded.models", Connection, tx);
                cmd.Parameters.AddWithValue(_scope);
                cmd.Parameters.AddWithValue(d.Day);
                cmd.Parameters.AddWithValue(d.Fingerprint);
                cmd.Parameters.AddWithValue(d.Status.ToString().ToLowerInvariant());
                cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)ModelDayCodec.Write(d.Models) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            return 0;
        }, ct).ConfigureAwait(false);
    }

    public async Task<string> ContentAsync(ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(model);
        if (await RelationKindAsync(model.Name, _processing, ct).ConfigureAwait(false) is null) { return "absent"; }
        var where = model.PartitionColumn is { } column ? $" WHERE {Quote(column)} = {Date(asOf)}" : "";
        // Row text hashed and summed: independent of row order, and a bigint sum cannot overflow numeric.
        await using var cmd = new NpgsqlCommand(
            $"SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {QuoteName(model.Name)} t{where}", Connection, _processing);
        return Convert.ToString(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture) ?? "";
    }

    public async Task<QueryResult> QueryAsync(string sql, int maxRows, CancellationToken ct)
    {
        await OpenAsync(ct).ConfigureAwait(false);
        try
        {
            await using var cmd = new NpgsqlCommand(sql, Connection);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var columns = Enumerable.Range(0, r.FieldCount).Select(r.GetName).ToList();
            var rows = new List<object?[]>();
            while (rows.Count < maxRows && await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var row = new object?[r.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = r.IsDBNull(i) ? null : r.GetDataTypeName(i) == "date" ? r.GetFieldValue<DateOnly>(i) : r.GetValue(i);
                }

                rows.Add(row);
            }

            return new QueryResult(columns, rows);
        }
        catch (PostgresException e)
        {
            throw new SluiceException($"query failed on postgres: {e.MessageText}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_processing is not null)
        {
            // Never committed: the processing failed or was cancelled, and rolling back leaves every table as it was.
            await _processing.DisposeAsync().ConfigureAwait(false);
            _processing = null;
        }

        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    // ---- helpers

    /// <summary>Temp tables the kinds create (ON COMMIT DROP), dropped after each run inside a processing's one transaction.</summary>
    private static readonly string DropTemps =
        "DROP TABLE IF EXISTS " + string.Join(", ", new[] { "_src", "_out", "_old", "_open", "_cand", "_close", "_clean", "_shape" }.Select(t => "pg_temp." + t));

    private async Task<T> InTransactionAsync<T>(Func<NpgsqlTransaction, Task<T>> body, CancellationToken ct)
    {
        if (_processing is not null)
        {
            var inside = await body(_processing).ConfigureAwait(false);
            await ExecAsync(DropTemps, _processing, ct).ConfigureAwait(false);
            return inside;
        }

        await using var tx = await Connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var result = await body(tx).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return result;
    }

    private async Task<int> ExecAsync(string sql, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, Connection, tx);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task<long> CountAsync(string sql, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, Connection, tx);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    /// <summary>'r' for a table, 'v' for a view, null when there is no such relation.</summary>
    private async Task<char?> RelationKindAsync(string qualified, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2", Connection, tx);
        var dot = qualified.IndexOf('.', StringComparison.Ordinal);
        cmd.Parameters.AddWithValue(qualified[..dot]);
        cmd.Parameters.AddWithValue(qualified[(dot + 1)..]);
        var kind = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return kind is char c ? c : kind is string s && s.Length > 0 ? s[0] : null;
    }

    /// <summary>Columns of a relation (a temp table: <c>pg_temp._src</c>) with their full types (numeric(18,2)); none when it does not exist.</summary>
    private static string ShapeSql(string relation) =>
        $"SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass({Literal(relation)}) AND attnum > 0 AND NOT attisdropped ORDER BY attnum";

    /// <summary>Several statements in one round trip; the rows of those that return rows, and every statement's affected-row count.</summary>
    private async Task<(List<List<object?[]>> Results, List<int> Affected)> BatchAsync(NpgsqlTransaction tx, CancellationToken ct, params string[] statements)
    {
        await using var batch = new NpgsqlBatch(Connection, tx);
        foreach (var sql in statements) { batch.BatchCommands.Add(new NpgsqlBatchCommand(sql)); }
        var results = new List<List<object?[]>>();
        await using (var r = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            do
            {
                if (r.FieldCount == 0) { continue; }
                var rows = new List<object?[]>();
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    var row = new object?[r.FieldCount];
                    for (var i = 0; i < row.Length; i++) { row[i] = r.IsDBNull(i) ? null : r.GetValue(i); }
                    rows.Add(row);
                }

                results.Add(rows);
            }
            while (await r.NextResultAsync(ct).ConfigureAwait(false));
        }

        return (results, Enumerable.Range(0, batch.BatchCommands.Count).Select(i => batch.BatchCommands[i].RecordsAffected).ToList());
    }

    private async Task<List<(string Name, string Type)>> ShapeAsync(string relation, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(ShapeSql(relation), Connection, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<(string, string)>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) { list.Add((r.GetString(0), r.GetString(1))); }
        return list;
    }

    /// <summary>
    /// Fresh statistics for what the run wrote: the next model reads it in a moment, before autovacuum would analyze it,
    /// and a plan made on stale row counts (a day's partition estimated empty) can turn a hash join into a nested loop.
    /// </summary>
    private async Task AnalyzeAsync(ModelProject project, ModelDefinition model, ModelRunResult result, NpgsqlTransaction tx, CancellationToken ct)
    {
        if (model.Kind == ModelKind.View) { return; }
        if (model.Kind is ModelKind.Snapshot or ModelKind.Incremental && model.PartitionColumn is null)
        {
            // A dimension changes by a few percent a day: its statistics stay good until autovacuum comes by.
            await using var cmd = new NpgsqlCommand("SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", Connection, tx);
            cmd.Parameters.AddWithValue(model.Name);
            var tuples = Convert.ToDouble(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) ?? 0d, CultureInfo.InvariantCulture);
            if (tuples >= 1000 && result.RowsOut < tuples * 0.1) { return; }
        }

        await ExecAsync($"ANALYZE {QuoteName(model.Name)}", tx, ct).ConfigureAwait(false);
        if (model.Kind == ModelKind.Clean) { await ExecAsync($"ANALYZE {QuoteName(project.Quarantine)}", tx, ct).ConfigureAwait(false); }
    }

    private async Task SetAppliedAsync(ModelDefinition model, DateOnly? through, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "INSERT INTO sluice.model_state(scope, model, applied_through, updated_at) VALUES ($1, $2, $3, now()) " +
            "ON CONFLICT (scope, model) DO UPDATE SET applied_through = excluded.applied_through, updated_at = excluded.updated_at", Connection, tx);
        cmd.Parameters.AddWithValue(_scope);
        cmd.Parameters.AddWithValue(model.Name);
        cmd.Parameters.Add(new NpgsqlParameter { Value = through is { } d ? d : DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Date });
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
