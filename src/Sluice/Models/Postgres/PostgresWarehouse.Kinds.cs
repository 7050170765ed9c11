using System.Globalization;
using Npgsql;
using Sluice.Core;
using Sluice.Models.Rules;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Postgres;

/// <summary>How each model kind changes PostgreSQL tables, inside the run's transaction.</summary>
internal sealed partial class PostgresWarehouse
{
    private async Task<ModelRunResult> RunTableAsync(ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var target = QuoteName(model.Name);
        var fresh = QuoteName(model.Name + "__sluice_new");
        await ExecAsync($"DROP TABLE IF EXISTS {fresh}", tx, ct).ConfigureAwait(false);
        var rows = await ExecAsync($"CREATE TABLE {fresh} AS {Dialect.Render(model, asOf)}", tx, ct).ConfigureAwait(false);
        switch (await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false))
        {
            case 'v':
                await ExecAsync($"DROP VIEW {target}", tx, ct).ConfigureAwait(false);
                break;
            case 'r':
                if (await DependentViewsAsync(model.Name, tx, ct).ConfigureAwait(false) is { Count: > 0 } views)
                {
                    // Views read the table: keep the table itself (same columns) and replace its rows.
                    var before = await ShapeAsync(model.Name, tx, ct).ConfigureAwait(false);
                    var after = await ShapeAsync(model.Name + "__sluice_new", tx, ct).ConfigureAwait(false);
                    if (!before.SequenceEqual(after))
                    {
                        throw new SluiceException($"{model.Name}: its columns changed but views read it ({string.Join(", ", views)}); drop them or run them after this model");
                    }

                    await ExecAsync($"TRUNCATE {target}", tx, ct).ConfigureAwait(false);
                    await ExecAsync($"INSERT INTO {target} SELECT * FROM {fresh}", tx, ct).ConfigureAwait(false);
                    await ExecAsync($"DROP TABLE {fresh}", tx, ct).ConfigureAwait(false);
                    return new ModelRunResult(rows, rows, $"{rows} rows");
                }

                await ExecAsync($"DROP TABLE {target}", tx, ct).ConfigureAwait(false);
                break;
            default:
                break;
        }

        await ExecAsync($"ALTER TABLE {fresh} RENAME TO {Quote(model.Table)}", tx, ct).ConfigureAwait(false);
        return new ModelRunResult(rows, rows, $"{rows} rows");
    }

    private async Task<List<string>> DependentViewsAsync(string qualified, NpgsqlTransaction tx, CancellationToken ct)
    {
        var dot = qualified.IndexOf('.', StringComparison.Ordinal);
        await using var cmd = new NpgsqlCommand(
            "SELECT DISTINCT view_schema || '.' || view_name FROM information_schema.view_table_usage WHERE table_schema = $1 AND table_name = $2", Connection, tx);
        cmd.Parameters.AddWithValue(qualified[..dot]);
        cmd.Parameters.AddWithValue(qualified[(dot + 1)..]);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var list = new List<string>();
        while (await r.ReadAsync(ct).ConfigureAwait(false)) { list.Add(r.GetString(0)); }
        return list;
    }

    private async Task<ModelRunResult> RunViewAsync(ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var target = QuoteName(model.Name);
        var sql = Dialect.Render(model, asOf);
        if (await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false) == 'r')
        {
            await ExecAsync($"DROP TABLE {target}", tx, ct).ConfigureAwait(false);
        }

        await tx.SaveAsync("view", ct).ConfigureAwait(false);
        try
        {
            await ExecAsync($"CREATE OR REPLACE VIEW {target} AS {sql}", tx, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidTableDefinition)
        {
            // CREATE OR REPLACE cannot drop or retype columns; the view is recreated instead.
            await tx.RollbackAsync("view", ct).ConfigureAwait(false);
            await ExecAsync($"DROP VIEW {target}", tx, ct).ConfigureAwait(false);
            await ExecAsync($"CREATE VIEW {target} AS {sql}", tx, ct).ConfigureAwait(false);
        }

        return new ModelRunResult(0, 0, "view created");
    }

    private async Task<ModelRunResult> RunPartitionAsync(ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var column = model.Incremental!.PartitionBy!;
        var target = QuoteName(model.Name);
        var sql = Dialect.Render(model, asOf);
        await ExecAsync($"CREATE TEMP TABLE _shape ON COMMIT DROP AS SELECT * FROM ({sql}) s WITH NO DATA", tx, ct).ConfigureAwait(false);
        var shape = await ShapeAsync("pg_temp._shape", tx, ct).ConfigureAwait(false);
        await ExecAsync("DROP TABLE pg_temp._shape", tx, ct).ConfigureAwait(false);
        var partition = shape.FirstOrDefault(c => c.Name == column);
        if (partition.Name is null || partition.Type != "date")
        {
            throw new SluiceException($"{model.Name}: partition_by '{column}' must be a DATE column of the result (columns: {string.Join(", ", shape.Select(c => $"{c.Name} {c.Type}"))})");
        }

        // The partition column goes last, as in the embedded warehouse (where it lives in the folder name).
        var ordered = shape.Where(c => c.Name != column).Append(partition).ToList();
        if (await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false) == 'r')
        {
            await ApplySchemaChangeAsync(model, model.Incremental.OnSchemaChange, await ShapeAsync(model.Name, tx, ct).ConfigureAwait(false), shape, [], tx, ct).ConfigureAwait(false);
        }

        await EnsureTableAsync(model.Name, ordered, [[column]], tx, ct).ConfigureAwait(false);
        var d = Date(asOf);
        await ExecAsync($"DELETE FROM {target} WHERE {Quote(column)} = {d}", tx, ct).ConfigureAwait(false);
        var list = string.Join(", ", ordered.Select(c => Quote(c.Name)));
        await using var cmd = new NpgsqlCommand(
            $"WITH ins AS (INSERT INTO {target} ({list}) SELECT {list} FROM ({sql}) s RETURNING {Quote(column)} AS p) " +
            $"SELECT count(*), count(*) FILTER (WHERE p IS DISTINCT FROM {d}) FROM ins", Connection, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        var rows = r.GetInt64(0);
        var stray = r.GetInt64(1);
        await r.CloseAsync().ConfigureAwait(false);
        if (stray > 0)
        {
            throw new SluiceException($"{model.Name}: {stray} rows have {column} other than the run's date {asOf:yyyy-MM-dd}; a run as of D writes only partition D (set {column} to {{{{ as_of }}}})");
        }

        return new ModelRunResult(rows, rows, $"{rows} rows in partition {column}={asOf:yyyy-MM-dd}");
    }

    private async Task<ModelRunResult> RunMergeAsync(ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var spec = model.Incremental!;
        var target = QuoteName(model.Name);
        await ExecAsync($"CREATE TEMP TABLE _out ON COMMIT DROP AS {Dialect.Render(model, asOf)}", tx, ct).ConfigureAwait(false);
        await ExecAsync("ANALYZE pg_temp._out", tx, ct).ConfigureAwait(false);
        var shape = await ShapeAsync("pg_temp._out", tx, ct).ConfigureAwait(false);
        await CheckKeysAsync(model, "pg_temp._out", spec.UniqueKey, shape, tx, ct).ConfigureAwait(false);
        if (spec.SurrogateKey is { } sk0 && shape.Any(c => c.Name == sk0))
        {
            throw new SluiceException($"{model.Name}: the result has a column '{sk0}', the surrogate key the engine fills; leave it out of the SELECT");
        }

        var rowsIn = await CountAsync("SELECT count(*) FROM pg_temp._out", tx, ct).ConfigureAwait(false);
        var columns = (spec.SurrogateKey is { } sk ? [(sk, "bigint")] : new List<(string, string)>()).Concat(shape).ToList();
        if (await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false) == 'r')
        {
            await ApplySchemaChangeAsync(model, spec.OnSchemaChange, await ShapeAsync(model.Name, tx, ct).ConfigureAwait(false), shape, columns.Take(spec.SurrogateKey is null ? 0 : 1).ToList(), tx, ct).ConfigureAwait(false);
        }

        await EnsureTableAsync(model.Name, columns, spec.SurrogateKey is null ? [spec.UniqueKey] : [spec.UniqueKey, [spec.SurrogateKey]], tx, ct).ConfigureAwait(false);
        var on = string.Join(" AND ", spec.UniqueKey.Select(k => $"t.{Quote(k)} = o.{Quote(k)}"));
        var order = string.Join(", ", spec.UniqueKey.Select(k => $"o.{Quote(k)}"));
        var list = string.Join(", ", shape.Select(c => Quote(c.Name)));
        var fromOut = string.Join(", ", shape.Select(c => $"o.{Quote(c.Name)}"));
        var max = spec.SurrogateKey is { } skm ? await CountAsync($"SELECT COALESCE(max({Quote(skm)}), 0) FROM {target}", tx, ct).ConfigureAwait(false) : 0;
        long changed;
        if (spec.UpdateExisting)
        {
            if (spec.SurrogateKey is { } sk1)
            {
                await ExecAsync($"CREATE TEMP TABLE _old ON COMMIT DROP AS SELECT {string.Join(", ", spec.UniqueKey.Select(k => $"t.{Quote(k)}"))}, t.{Quote(sk1)} FROM {target} t JOIN pg_temp._out o ON {on}", tx, ct).ConfigureAwait(false);
            }

            await ExecAsync($"DELETE FROM {target} t USING pg_temp._out o WHERE {on}", tx, ct).ConfigureAwait(false);
            changed = spec.SurrogateKey is { } sk2
                ? await ExecAsync(
                    $"INSERT INTO {target} ({Quote(sk2)}, {list}) SELECT COALESCE(t.{Quote(sk2)}, {max} + row_number() OVER (PARTITION BY t.{Quote(sk2)} IS NULL ORDER BY {order})), {fromOut} " +
                    $"FROM pg_temp._out o LEFT JOIN pg_temp._old t ON {on}", tx, ct).ConfigureAwait(false)
                : await ExecAsync($"INSERT INTO {target} ({list}) SELECT {fromOut} FROM pg_temp._out o", tx, ct).ConfigureAwait(false);
        }
        else
        {
            var key = spec.SurrogateKey is { } sk3 ? $"{Quote(sk3)}, " : "";
            var value = spec.SurrogateKey is null ? "" : $"{max} + row_number() OVER (ORDER BY {order}), ";
            changed = await ExecAsync(
                $"INSERT INTO {target} ({key}{list}) SELECT {value}{fromOut} FROM pg_temp._out o WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})", tx, ct).ConfigureAwait(false);
        }

        return new ModelRunResult(rowsIn, changed, changed == 0 ? "no new keys" : $"{changed} rows merged");
    }

    /// <summary>
    /// SCD2 in two round trips on the happy path (a daily merge is small; round trips would dominate it): the source, one
    /// pass checking its keys and the target's shape in one batch; then, in another, what opens and closes, the closing
    /// updates and the inserts. Under the timestamp strategy the keys are checked on the candidates, in a round trip of
    /// their own between the two. Profiled against the hand-written merge in docs/BENCHMARKS.md ("bench warehouse").
    /// </summary>
    private async Task<ModelRunResult> RunSnapshotAsync(ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var spec = model.Snapshot!;
        var target = QuoteName(model.Name);
        var sourceKey = SnapshotSql.SourceKey(spec);
        // No ANALYZE of _src: its row count, which the joins' plans need, comes from its pages; sampling it cost as much
        // as a tenth of the merge. NULL keys, NULL updated_at and duplicates are found by one aggregate (the row count is
        // the CREATE's), and only when it finds one do the queries that say which run. Under the timestamp strategy that
        // aggregate runs over the candidates, not the whole source (KeyCheck says why). Then, unless keys missing from the
        // source close their versions (which reads the source again per absent key), the source need not be copied at
        // all: the candidate join reads the model's SELECT itself (where PostgreSQL can use parallel workers, which a
        // temp table forbids), _src only gives its shape, and a count the rows in. At 1,000,000 keys, copying the source
        // and joining the copy took about twice the direct join (docs/BENCHMARKS.md, "bench warehouse").
        var timestamped = spec.Strategy == SnapshotStrategy.Timestamp;
        var direct = timestamped && spec.HardDeletes == HardDeletes.Ignore;
        var rendered = Dialect.Render(model, asOf);
        var (results, created) = await BatchAsync(tx, ct,
        [
            direct ? $"CREATE TEMP TABLE _src ON COMMIT DROP AS SELECT * FROM ({rendered}\n) s WITH NO DATA" : $"CREATE TEMP TABLE _src ON COMMIT DROP AS {rendered}",
            ShapeSql("pg_temp._src"),
            .. direct ? [$"SELECT count(*) FROM ({rendered}\n) s"] : timestamped ? [] : new[] { KeyCheck("pg_temp._src", sourceKey) },
            ShapeSql(model.Name),
        ]).ConfigureAwait(false);
        var shape = results[0].Select(r => ((string)r[0]!, (string)r[1]!)).ToList();
        if (shape.FirstOrDefault(c => spec.EngineColumns.Contains(c.Item1)) is { Item1: not null } clash)
        {
            throw new SluiceException($"{model.Name}: the result has a column '{clash.Item1}', which the snapshot fills itself; leave it out of the SELECT");
        }

        var timeType = "date";
        if (spec.Strategy == SnapshotStrategy.Timestamp)
        {
            var updatedAt = shape.FirstOrDefault(c => c.Item1 == spec.UpdatedAt);
            if (updatedAt.Item1 is null || SchemaChange.Kind(updatedAt.Item2) is not ("timestamp" or "date"))
            {
                throw new SluiceException($"{model.Name}: updated_at '{spec.UpdatedAt}' must be a TIMESTAMP or DATE column of the result (columns: {string.Join(", ", shape.Select(c => $"{c.Item1} {c.Item2}"))})");
            }

            timeType = updatedAt.Item2;
        }

        if (!timestamped && results[1].Count > 0) { await ThrowSourceKeyErrorAsync(model, sourceKey, "pg_temp._src", tx, ct).ConfigureAwait(false); }
        var (rowsIn, existing) = (direct ? Convert.ToInt64(results[1][0][0], CultureInfo.InvariantCulture) : created[0], results[^1]);
        var names = shape.Select(c => c.Item1).ToList();
        var sql = new SnapshotSql(model, names, timeType, target, direct ? $"({rendered}\n)" : "pg_temp._src", Date(asOf));
        var meta = SnapshotSql.MetaColumns(spec, timeType);
        if (existing.Count == 0 || await RelationKindAsync(model.Name, tx, ct).ConfigureAwait(false) != 'r')
        {
            var columns = meta.Where(m => m.Name == spec.SurrogateKey).Concat(shape).Concat(meta.Where(m => m.Name != spec.SurrogateKey)).ToList();
            await EnsureTableAsync(model.Name, columns, spec.SurrogateKey is null ? [[.. spec.UniqueKey, spec.ValidFrom]] : [[spec.SurrogateKey], [.. spec.UniqueKey, spec.ValidFrom]], tx, ct).ConfigureAwait(false);
            await ExecAsync($"CREATE UNIQUE INDEX ON {target} ({string.Join(", ", spec.UniqueKey.Select(Quote))}) WHERE {Quote(spec.IsCurrent)}", tx, ct).ConfigureAwait(false);
        }
        else
        {
            var table = existing.Select(r => ((string)r[0]!, (string)r[1]!)).ToList();
            await ApplySchemaChangeAsync(model, spec.OnSchemaChange, table, shape, meta, tx, ct).ConfigureAwait(false);
        }

        if (rowsIn == 0)
        {
            // No source rows is no snapshot (no file that day), never "every key disappeared".
            return new ModelRunResult(0, 0, "source empty: nothing changed");
        }

        var current = Quote(spec.IsCurrent);
        var opened = string.Join(", ", sql.OpenedColumns.Select(Quote));
        // What opens and closes is decided against the current versions before any is closed. _close is analyzed (a
        // few rows, cheap) so that its size is known; random_page_cost is lowered for the closing UPDATE alone because the
        // candidate join has just read every current version: an index probe per closing key then costs no disk read,
        // and a day closing a few percent of the keys no longer pays a second scan of the whole table (which the
        // default costs chose, 1.5 to 2x the probes' time at 1,000,000 keys).
        if (timestamped)
        {
            var (found, _) = await BatchAsync(tx, ct, $"CREATE TEMP TABLE _cand ON COMMIT DROP AS {sql.Candidates}", KeyCheck("pg_temp._cand", sourceKey)).ConfigureAwait(false);
            if (found[0].Count > 0) { await ThrowSourceKeyErrorAsync(model, sourceKey, "pg_temp._cand", tx, ct).ConfigureAwait(false); }
        }

        var (_, affected) = await BatchAsync(tx, ct,
        [
            .. timestamped ? [] : new[] { $"CREATE TEMP TABLE _cand ON COMMIT DROP AS {sql.Candidates}" },
            $"CREATE TEMP TABLE _close ON COMMIT DROP AS {sql.Closing("pg_temp._cand")}",
            $"CREATE TEMP TABLE _open ON COMMIT DROP AS {sql.Opened("pg_temp._cand")}",
            "ANALYZE pg_temp._close",
            "SET LOCAL random_page_cost = 1.1",
            $"UPDATE {target} c SET {Quote(spec.ValidTo)} = x._to, {current} = FALSE FROM pg_temp._close x WHERE c.{current} AND {sql.On("c", "x")}",
            "RESET random_page_cost",
            $"INSERT INTO {target} ({opened}) SELECT {opened} FROM pg_temp._open",
        ]).ConfigureAwait(false);
        var (closedRows, openedRows) = (affected[^3], affected[^1]);
        return new ModelRunResult(rowsIn, openedRows + closedRows, openedRows + closedRows == 0 ? "no change" : $"{openedRows} versions opened, {closedRows} closed");
    }

    /// <summary>
    /// One aggregate finding a NULL in the source key or a duplicate of it. Under the timestamp strategy it reads the
    /// candidates (SnapshotSql.Candidates): the rows of a duplicate share key and updated_at, so they are candidates
    /// together or not at all, and every row with a NULL key or updated_at is one; a duplicate no newer than the current
    /// version makes no version, so it is no error. The whole source's aggregate (1,000,000 keys and updated_at, spilling
    /// at the default work_mem) was a third of the model's run in bench warehouse.
    /// </summary>
    private static string KeyCheck(string relation, IReadOnlyList<string> sourceKey) =>
        $"SELECT 1 FROM {relation} GROUP BY {string.Join(", ", sourceKey.Select(Quote))} HAVING count(*) > 1 OR {string.Join(" OR ", sourceKey.Select(k => $"{Quote(k)} IS NULL"))} LIMIT 1";

    /// <summary>Says what is wrong with the snapshot's source keys (NULL keys, NULL updated_at, a duplicate) in <paramref name="relation"/>, once the check found something.</summary>
    private async Task ThrowSourceKeyErrorAsync(ModelDefinition model, IReadOnlyList<string> sourceKey, string relation, NpgsqlTransaction tx, CancellationToken ct)
    {
        var spec = model.Snapshot!;
        var keys = string.Join(", ", sourceKey.Select(Quote));
        var nullUpdatedAt = spec.UpdatedAt is { } u ? $"count(*) FILTER (WHERE {Quote(u)} IS NULL)" : "0";
        var (results, _) = await BatchAsync(tx, ct,
            $"SELECT count(*) FILTER (WHERE {string.Join(" OR ", spec.UniqueKey.Select(k => $"{Quote(k)} IS NULL"))}), {nullUpdatedAt} FROM {relation}",
            $"SELECT {keys}, count(*) FROM {relation} WHERE {string.Join(" AND ", sourceKey.Select(k => $"{Quote(k)} IS NOT NULL"))} GROUP BY {keys} HAVING count(*) > 1 LIMIT 1").ConfigureAwait(false);
        if (Convert.ToInt64(results[0][0][0], CultureInfo.InvariantCulture) is var nulls and > 0)
        {
            throw new SluiceException($"{model.Name}: {nulls} rows of the result have a NULL in unique_key ({string.Join(", ", spec.UniqueKey)})");
        }

        if (Convert.ToInt64(results[0][0][1], CultureInfo.InvariantCulture) is var nullTimes and > 0)
        {
            throw new SluiceException($"{model.Name}: {nullTimes} rows of the result have a NULL updated_at ({spec.UpdatedAt}); coalesce it in the SELECT");
        }

        var shown = string.Join(", ", sourceKey.Select((k, i) => $"{k} = {Sluice.Lake.LakeQueryEngine.FormatValue(results[1][0][i])}"));
        throw new SluiceException($"{model.Name}: the result has {results[1][0][sourceKey.Count]} rows for {shown}; unique_key ({string.Join(", ", sourceKey)}) must identify one row");
    }

    /// <summary>
    /// Brings the table to the result's columns as the model's on_schema_change says (new columns added; with
    /// sync_all_columns lost ones dropped and retyped ones converted) and adds the engine's columns it lacks.
    /// </summary>
    private async Task ApplySchemaChangeAsync(ModelDefinition model, OnSchemaChange policy, List<(string Name, string Type)> table, List<(string Name, string Type)> result, IReadOnlyList<(string Name, string Type)> meta, NpgsqlTransaction tx, CancellationToken ct)
    {
        if (table.Count == 0) { return; }
        var target = QuoteName(model.Name);
        var change = SchemaChange.Compare(table, result, meta.Select(m => m.Name).ToList());
        change.Check(model, policy);
        foreach (var (name, type) in change.Added.Concat(meta.Where(m => table.All(t => t.Name != m.Name))))
        {
            await ExecAsync($"ALTER TABLE {target} ADD COLUMN {Quote(name)} {type}", tx, ct).ConfigureAwait(false);
        }

        if (policy != OnSchemaChange.SyncAllColumns) { return; }
        foreach (var name in change.Removed)
        {
            await ExecAsync($"ALTER TABLE {target} DROP COLUMN {Quote(name)}", tx, ct).ConfigureAwait(false);
        }

        foreach (var (name, _, to) in change.Retyped)
        {
            await ExecAsync($"ALTER TABLE {target} ALTER COLUMN {Quote(name)} TYPE {to} USING {Quote(name)}::{to}", tx, ct).ConfigureAwait(false);
        }
    }

    private async Task<ModelRunResult> RunCleanAsync(ModelProject project, ModelDefinition model, DateOnly asOf, NpgsqlTransaction tx, CancellationToken ct)
    {
        var spec = model.Clean!;
        var sourceColumns = (await ShapeAsync(spec.Source, tx, ct).ConfigureAwait(false)).Select(c => c.Name).ToList();
        await ExecAsync($"CREATE TEMP TABLE _clean ON COMMIT DROP AS {CleanSqlBuilder.Build(model.Name, spec, Dialect, asOf, sourceColumns)}", tx, ct).ConfigureAwait(false);
        await ExecAsync("ANALYZE pg_temp._clean", tx, ct).ConfigureAwait(false);
        var outputs = CleanSqlBuilder.OutputColumns(spec).Where(c => c.Name != CleanSpec.FileDateOutput).Append((Name: CleanSpec.FileDateOutput, SqlType: "DATE")).Select(c => (Name: c.Name, Type: c.SqlType)).ToList();
        await EnsureTableAsync(model.Name, outputs, [[CleanSpec.FileDateOutput]], tx, ct).ConfigureAwait(false);
        await EnsureTableAsync(project.Quarantine, QuarantineDdl, [[CleanSpec.FileDateOutput, "model"]], tx, ct).ConfigureAwait(false);
        var d = Date(asOf);
        var list = string.Join(", ", outputs.Select(c => Quote(c.Name)));
        await ExecAsync($"DELETE FROM {QuoteName(model.Name)} WHERE file_date = {d}", tx, ct).ConfigureAwait(false);
        var clean = await ExecAsync($"INSERT INTO {QuoteName(model.Name)} ({list}) SELECT {list} FROM pg_temp._clean WHERE {CleanSqlBuilder.ReasonColumn} IS NULL", tx, ct).ConfigureAwait(false);
        await ExecAsync($"DELETE FROM {QuoteName(project.Quarantine)} WHERE model = {Literal(model.Name)} AND file_date = {d}", tx, ct).ConfigureAwait(false);
        var rejected = await ExecAsync(
            $"INSERT INTO {QuoteName(project.Quarantine)} (model, source_table, source_file, source_row, rule, column_name, raw_values, file_date) " +
            $"SELECT {Literal(model.Name)}, {Literal(spec.Source)}, source_file, source_row, {CleanSqlBuilder.ReasonColumn}, {CleanSqlBuilder.ReasonColumnColumn}, {CleanSqlBuilder.RawColumn}, file_date " +
            $"FROM pg_temp._clean WHERE {CleanSqlBuilder.ReasonColumn} IS NOT NULL", tx, ct).ConfigureAwait(false);
        return new ModelRunResult(clean + rejected, clean, $"{clean} clean rows, {rejected} quarantined");
    }

    private static readonly List<(string Name, string Type)> QuarantineDdl =
    [
        ("model", "text"), ("source_table", "text"), ("source_file", "text"), ("source_row", "bigint"), ("rule", "text"),
        ("column_name", "text"), ("raw_values", "text"), ("file_date", "date"),
    ];

    /// <summary>
    /// Creates the table when missing (with an index per column list), or adds the columns it lacks (a model that gained
    /// a column). Returns whether it was created.
    /// </summary>
    private async Task<bool> EnsureTableAsync(string qualified, IReadOnlyList<(string Name, string Type)> columns, IReadOnlyList<IReadOnlyList<string>> indexes, NpgsqlTransaction tx, CancellationToken ct)
    {
        var kind = await RelationKindAsync(qualified, tx, ct).ConfigureAwait(false);
        var target = QuoteName(qualified);
        if (kind == 'v')
        {
            await ExecAsync($"DROP VIEW {target}", tx, ct).ConfigureAwait(false);
            kind = null;
        }

        if (kind is null)
        {
            await ExecAsync($"CREATE TABLE {target} ({string.Join(", ", columns.Select(c => $"{Quote(c.Name)} {c.Type}"))})", tx, ct).ConfigureAwait(false);
            foreach (var index in indexes)
            {
                await ExecAsync($"CREATE INDEX ON {target} ({string.Join(", ", index.Select(Quote))})", tx, ct).ConfigureAwait(false);
            }

            return true;
        }

        var existing = await ShapeAsync(qualified, tx, ct).ConfigureAwait(false);
        foreach (var c in columns.Where(c => existing.All(e => e.Name != c.Name)))
        {
            await ExecAsync($"ALTER TABLE {target} ADD COLUMN {Quote(c.Name)} {c.Type}", tx, ct).ConfigureAwait(false);
        }

        return false;
    }

    private async Task CheckKeysAsync(ModelDefinition model, string relation, IReadOnlyList<string> keys, List<(string Name, string Type)> shape, NpgsqlTransaction tx, CancellationToken ct)
    {
        foreach (var k in keys.Where(k => shape.All(c => c.Name != k)))
        {
            throw new SluiceException($"{model.Name}: unique_key column '{k}' is not in the result (columns: {string.Join(", ", shape.Select(c => c.Name))})");
        }

        var list = string.Join(", ", keys.Select(Quote));
        var nulls = await CountAsync($"SELECT count(*) FROM {relation} WHERE {string.Join(" OR ", keys.Select(k => $"{Quote(k)} IS NULL"))}", tx, ct).ConfigureAwait(false);
        if (nulls > 0)
        {
            throw new SluiceException($"{model.Name}: {nulls} rows of the result have a NULL in unique_key ({string.Join(", ", keys)})");
        }

        await using var cmd = new NpgsqlCommand($"SELECT {list}, count(*) FROM {relation} GROUP BY {list} HAVING count(*) > 1 LIMIT 1", Connection, tx);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var shown = string.Join(", ", keys.Select((k, i) => $"{k} = {Sluice.Lake.LakeQueryEngine.FormatValue(r.GetValue(i))}"));
            throw new SluiceException($"{model.Name}: the result has {r.GetInt64(keys.Count)} rows for {shown}; unique_key ({string.Join(", ", keys)}) must identify one row");
        }
    }
}
