using Sluice.Core;
using Sluice.Core.Schema;
using Sluice.Lake;
using Sluice.Models.Rules;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Embedded;

/// <summary>How each model kind becomes lake files on the embedded warehouse.</summary>
internal sealed partial class LakeWarehouse
{
    private static readonly FieldSpec[] QuarantineColumns =
    [
        new("model", FieldType.String, false), new("source_table", FieldType.String, false), new("source_file", FieldType.String, false),
        new("source_row", FieldType.Integer, false), new("rule", FieldType.String, false), new("column_name", FieldType.String, false),
        new("raw_values", FieldType.String, false),
    ];

    private ModelRunResult RunTable(ModelDefinition model, DateOnly asOf)
    {
        var sql = Dialect.Render(model, asOf);
        var table = LakeTable.Unpartitioned(model.Schema, model.Table, Fields(Describe(sql)));
        using var stager = Lake.BeginStaging($"model-{model.Name}");
        var (path, rows) = Copy(stager, sql);
        stager.AddWritten(table, "", path, rows);
        var replace = AllPartitions(Registered(model.Name) ?? table);
        Lake.Register(table);
        Commit(stager, model, asOf, replace, table);
        return new ModelRunResult(rows, rows, $"{rows} rows");
    }

    private ModelRunResult RunView(ModelDefinition model, DateOnly asOf)
    {
        var sql = Dialect.Render(model, asOf);
        Exec($"CREATE OR REPLACE VIEW {QuoteName(model.Name)} AS {sql}");
        var old = Registered(model.Name);
        using var stager = Lake.BeginStaging($"model-{model.Name}");
        if (_pending is not null)
        {
            _pending.Add(stager, old is null ? [] : AllPartitions(old));
            _pending.Views[model.Name] = sql;
            _pending.Applied[model.Name] = asOf;
            return new ModelRunResult(0, 0, "view created");
        }

        var now = _services.Time.GetUtcNow();
        using var fence = Jobs.JobFence.Hold();
        Lake.Commit(
            stager,
            (c, tx) =>
            {
                Lake.Views.Save(c, tx, model.Name, sql, now);
                _state.SetApplied(c, tx, model.Name, asOf, now);
            },
            old is null ? null : AllPartitions(old));
        return new ModelRunResult(0, 0, "view created");
    }

    private ModelRunResult RunPartition(ModelDefinition model, DateOnly asOf)
    {
        var column = model.Incremental!.PartitionBy!;
        Exec($"CREATE OR REPLACE TEMP TABLE _out AS {Dialect.Render(model, asOf)}");
        var columns = Describe("temp._out");
        var partition = columns.FirstOrDefault(c => c.Name == column);
        if (partition.Name is null || partition.Type != "DATE")
        {
            throw new SluiceException($"{model.Name}: partition_by '{column}' must be a DATE column of the result (columns: {string.Join(", ", columns.Select(c => $"{c.Name} {c.Type}"))})");
        }

        var stray = Count($"SELECT count(*) FROM temp._out WHERE {Quote(column)} IS DISTINCT FROM {Date(asOf)}");
        if (stray > 0)
        {
            throw new SluiceException($"{model.Name}: {stray} rows have {column} other than the run's date {Day(asOf)}; a run as of D writes only partition D (set {column} to {{{{ as_of }}}})");
        }

        var table = new LakeTable(model.Schema, model.Table, column, FieldType.Date, Fields(columns.Where(c => c.Name != column)));
        var rows = Count("SELECT count(*) FROM temp._out");
        using var stager = Lake.BeginStaging($"model-{model.Name}");
        if (rows > 0)
        {
            var (path, written) = Copy(stager, $"SELECT * EXCLUDE ({Quote(column)}) FROM temp._out");
            stager.AddWritten(table, Day(asOf), path, written);
        }

        var old = Registered(model.Name);
        var replace = old is not null && old.PartitionKey != column ? AllPartitions(old) : [(table, Day(asOf))];
        if (old is not null && old.PartitionKey == column && HasRelation(model.Name) && Files(model.Name).Count > 0)
        {
            replace.AddRange(Resync(model, columns, stager, table, Day(asOf)));
        }

        Lake.Register(table);
        Commit(stager, model, asOf, replace, table);
        return new ModelRunResult(rows, rows, $"{rows} rows in partition {column}={Day(asOf)}");
    }

    /// <summary>
    /// Applies the model's on_schema_change to its other partitions: checked always; under sync_all_columns, when a
    /// column was lost or retyped, every other partition is rewritten in the result's shape. The partitions rewritten.
    /// </summary>
    private List<(LakeTable, string)> Resync(ModelDefinition model, List<(string Name, string Type)> result, LakeStager stager, LakeTable table, string ownDay)
    {
        var column = model.Incremental!.PartitionBy!;
        var change = SchemaChange.Compare(Describe(QuoteName(model.Name)), result, []);
        change.Check(model, model.Incremental.OnSchemaChange);
        if (model.Incremental.OnSchemaChange != OnSchemaChange.SyncAllColumns || change.Removed.Count + change.Retyped.Count == 0) { return []; }
        AdaptTarget(model, OnSchemaChange.SyncAllColumns, result, []);
        var rewritten = new List<(LakeTable, string)>();
        foreach (var p in Partitions(model.Name).Where(p => p.Length > 0 && p != ownDay))
        {
            rewritten.Add((table, p));
            var (path, rows) = Copy(stager, $"SELECT * EXCLUDE ({Quote(column)}) FROM temp._tgt WHERE {Quote(column)} = DATE {Literal(p)}");
            if (rows > 0) { stager.AddWritten(table, p, path, rows); }
        }

        return rewritten;
    }

    private void RewindPartitions(ModelDefinition model, DateOnly from)
    {
        var table = Registered(model.Name);
        if (table is null) { SaveState(model, null); return; }
        var doomed = Partitions(model.Name).Where(p => string.CompareOrdinal(p, Day(from)) >= 0).Select(p => (table, p)).ToList();
        using var stager = Lake.BeginStaging($"rewind-{model.Name}");
        Commit(stager, model, from.AddDays(-1), doomed, table);
    }

    private ModelRunResult RunMerge(ModelDefinition model, DateOnly asOf)
    {
        var spec = model.Incremental!;
        Exec($"CREATE OR REPLACE TEMP TABLE _out AS {Dialect.Render(model, asOf)}");
        var columns = Describe("temp._out");
        CheckKeys(model, "temp._out", spec.UniqueKey, columns);
        if (spec.SurrogateKey is { } sk && columns.Any(c => c.Name == sk))
        {
            throw new SluiceException($"{model.Name}: the result has a column '{sk}', the surrogate key the engine fills; leave it out of the SELECT");
        }

        var rowsIn = Count("SELECT count(*) FROM temp._out");
        var old = Registered(model.Name);
        var exists = old is not null && HasRelation(model.Name) && Files(model.Name).Count > 0;
        var on = string.Join(" AND ", spec.UniqueKey.Select(k => $"t.{Quote(k)} = o.{Quote(k)}"));
        var order = string.Join(", ", spec.UniqueKey.Select(k => $"o.{Quote(k)}"));
        var target = "temp._tgt";
        var reshaped = exists && AdaptTarget(model, spec.OnSchemaChange, columns, spec.SurrogateKey is { } skt ? [(skt, "BIGINT")] : []);
        string select;
        long changed;
        if (!exists)
        {
            changed = rowsIn;
            select = spec.SurrogateKey is { } sk1
                ? $"SELECT CAST(row_number() OVER (ORDER BY {order}) AS BIGINT) AS {Quote(sk1)}, o.* FROM temp._out o"
                : "SELECT * FROM temp._out";
        }
        else
        {
            var max = spec.SurrogateKey is { } skm ? $"(SELECT COALESCE(max({Quote(skm)}), 0) FROM {target})" : "0";
            if (spec.UpdateExisting)
            {
                changed = rowsIn;
                var key = spec.SurrogateKey is { } sk2
                    ? $"CAST(COALESCE(t.{Quote(sk2)}, {max} + row_number() OVER (PARTITION BY t.{Quote(sk2)} IS NULL ORDER BY {order})) AS BIGINT) AS {Quote(sk2)}, "
                    : "";
                select = $"SELECT t.* FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM temp._out o WHERE {on}) " +
                         $"UNION ALL BY NAME SELECT {key}o.* FROM temp._out o LEFT JOIN {target} t ON {on}";
            }
            else
            {
                changed = Count($"SELECT count(*) FROM temp._out o WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})");
                var key = spec.SurrogateKey is { } sk3 ? $"CAST({max} + row_number() OVER (ORDER BY {order}) AS BIGINT) AS {Quote(sk3)}, " : "";
                select = $"SELECT * FROM {target} UNION ALL BY NAME SELECT {key}o.* FROM temp._out o WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})";
            }
        }

        if (changed == 0 && exists && !reshaped)
        {
            SaveState(model, asOf);
            return new ModelRunResult(rowsIn, 0, "no new keys");
        }

        ReplaceWhole(model, select, asOf);
        return new ModelRunResult(rowsIn, changed, $"{changed} rows merged");
    }

    private void RewindMerge(ModelDefinition model, DateOnly from)
    {
        var spec = model.Incremental!;
        if (Registered(model.Name) is null || Files(model.Name).Count == 0) { SaveState(model, null); return; }
        var keep = spec.CanRewindByDate ? $"SELECT * FROM {QuoteName(model.Name)} WHERE {Quote(spec.RewindBy!)} < {Date(from)}" : $"SELECT * FROM {QuoteName(model.Name)} WHERE false";
        ReplaceWhole(model, keep, spec.CanRewindByDate ? from.AddDays(-1) : null);
    }

    private ModelRunResult RunSnapshot(ModelDefinition model, DateOnly asOf)
    {
        var spec = model.Snapshot!;
        Exec($"CREATE OR REPLACE TEMP TABLE _src AS {Dialect.Render(model, asOf)}");
        var columns = Describe("temp._src");
        if (columns.FirstOrDefault(c => spec.EngineColumns.Contains(c.Name)) is { Name: not null } clash)
        {
            throw new SluiceException($"{model.Name}: the result has a column '{clash.Name}', which the snapshot fills itself; leave it out of the SELECT");
        }

        var timeType = SnapshotTimeType(model, columns);
        // Under the timestamp strategy the keys are checked on the candidates, as on PostgreSQL (PostgresWarehouse.KeyCheck
        // says why), so that a duplicate no newer than the current version stops neither engine.
        var timestamped = spec.Strategy == SnapshotStrategy.Timestamp;
        RequireKeyColumns(model, SnapshotSql.SourceKey(spec), columns);
        if (!timestamped) { CheckKeys(model, "temp._src", SnapshotSql.SourceKey(spec), columns); }
        var rowsIn = Count("SELECT count(*) FROM temp._src");
        var exists = Registered(model.Name) is not null && Files(model.Name).Count > 0;
        if (rowsIn == 0 && exists)
        {
            // No source rows is no snapshot (no file that day), never "every key disappeared".
            SaveState(model, asOf);
            return new ModelRunResult(0, 0, "source empty: nothing changed");
        }

        var names = columns.Select(c => c.Name).ToList();
        var sql = new SnapshotSql(model, names, timeType, "temp._tgt", "temp._src", Date(asOf));
        var changed = exists && AdaptTarget(model, spec.OnSchemaChange, columns, SnapshotSql.MetaColumns(spec, timeType));
        if (!exists) { Exec($"CREATE OR REPLACE TEMP TABLE _tgt AS {sql.EmptyTarget()}"); }

        Exec($"CREATE OR REPLACE TEMP TABLE _cand AS {sql.Candidates}");
        if (timestamped) { CheckKeys(model, "temp._cand", SnapshotSql.SourceKey(spec), columns); }
        Exec($"CREATE OR REPLACE TEMP TABLE _close AS {sql.Closing("temp._cand")}");
        Exec($"CREATE OR REPLACE TEMP TABLE _open AS {sql.Opened("temp._cand")}");
        var current = Quote(spec.IsCurrent);
        var closed = Count($"SELECT count(*) FROM temp._tgt c JOIN temp._close x ON {sql.On("c", "x")} AND c.{current}");
        var opened = Count("SELECT count(*) FROM temp._open");
        if (opened == 0 && closed == 0 && exists && !changed)
        {
            SaveState(model, asOf);
            return new ModelRunResult(rowsIn, 0, "no change");
        }

        var to = Quote(spec.ValidTo);
        // Only the current version closes; the test is in the CASE, not the join: a condition on the preserved side of a
        // LEFT JOIN is no equality between the sides, and DuckDB then plans a nested-loop join (every version against
        // every closing key: 76 s instead of a few for 1,000,000 keys and 10,000 closes, bench warehouse).
        var closes = $"x._to IS NOT NULL AND c.{current}";
        ReplaceWhole(model,
            $"SELECT c.* REPLACE (CASE WHEN {closes} THEN x._to ELSE c.{to} END AS {to}, CASE WHEN {closes} THEN FALSE ELSE c.{current} END AS {current}) " +
            $"FROM temp._tgt c LEFT JOIN temp._close x ON {sql.On("c", "x")} UNION ALL BY NAME SELECT * FROM temp._open",
            asOf);
        return new ModelRunResult(rowsIn, opened + closed, $"{opened} versions opened, {closed} closed");
    }

    /// <summary>The type of valid_from and valid_to: DATE (check strategy), or the type of the updated_at column.</summary>
    private string SnapshotTimeType(ModelDefinition model, List<(string Name, string Type)> columns)
    {
        var spec = model.Snapshot!;
        if (spec.Strategy == SnapshotStrategy.Check) { return "DATE"; }
        var updatedAt = columns.FirstOrDefault(c => c.Name == spec.UpdatedAt);
        if (updatedAt.Name is null || SchemaChange.Kind(updatedAt.Type) is not ("timestamp" or "date"))
        {
            throw new SluiceException($"{model.Name}: updated_at '{spec.UpdatedAt}' must be a TIMESTAMP or DATE column of the result (columns: {string.Join(", ", columns.Select(c => $"{c.Name} {c.Type}"))})");
        }

        var nulls = Count($"SELECT count(*) FROM temp._src WHERE {Quote(spec.UpdatedAt!)} IS NULL");
        return nulls == 0 ? updatedAt.Type : throw new SluiceException($"{model.Name}: {nulls} rows of the result have a NULL updated_at ({spec.UpdatedAt}); coalesce it in the SELECT");
    }

    /// <summary>
    /// Makes <c>temp._tgt</c> the model's table with the result's columns as the policy says (added ones NULL; with
    /// sync_all_columns lost ones dropped and retyped ones cast), and the engine's columns it lacks; whether it changed.
    /// </summary>
    private bool AdaptTarget(ModelDefinition model, OnSchemaChange policy, List<(string Name, string Type)> result, IReadOnlyList<(string Name, string Type)> meta)
    {
        var table = Describe(QuoteName(model.Name));
        var change = SchemaChange.Compare(table, result, meta.Select(m => m.Name).ToList());
        change.Check(model, policy);
        var sync = policy == OnSchemaChange.SyncAllColumns;
        var items = new List<string>();
        foreach (var (name, _) in table)
        {
            if (sync && change.Removed.Contains(name)) { continue; }
            var retyped = change.Retyped.FirstOrDefault(r => r.Name == name);
            items.Add(sync && retyped.Name is not null ? $"CAST(c.{Quote(name)} AS {retyped.To}) AS {Quote(name)}" : $"c.{Quote(name)}");
        }

        var missing = change.Added.Concat(meta.Where(m => table.All(t => t.Name != m.Name))).ToList();
        items.AddRange(missing.Select(m => $"CAST(NULL AS {m.Type}) AS {Quote(m.Name)}"));
        Exec($"CREATE OR REPLACE TEMP TABLE _tgt AS SELECT {string.Join(", ", items)} FROM {QuoteName(model.Name)} c");
        return missing.Count > 0 || (sync && (change.Removed.Count > 0 || change.Retyped.Count > 0));
    }

    private void RewindSnapshot(ModelDefinition model, DateOnly from)
    {
        if (Registered(model.Name) is null || Files(model.Name).Count == 0) { SaveState(model, null); return; }
        var spec = model.Snapshot!;
        if (!model.CanRewindByDate)
        {
            ReplaceWhole(model, $"SELECT * FROM {QuoteName(model.Name)} WHERE 1 = 0", null);
            return;
        }

        var f = Date(from);
        var reopened = $"{Quote(spec.ValidTo)} >= {f}";
        var currentEnd = spec.ValidToCurrent is { } v ? $"DATE {Literal(v)}" : "CAST(NULL AS DATE)";
        ReplaceWhole(model,
            $"SELECT * REPLACE (CASE WHEN {reopened} THEN {currentEnd} ELSE {Quote(spec.ValidTo)} END AS {Quote(spec.ValidTo)}, " +
            $"CASE WHEN {reopened} THEN TRUE ELSE {Quote(spec.IsCurrent)} END AS {Quote(spec.IsCurrent)}) " +
            $"FROM {QuoteName(model.Name)} WHERE {Quote(spec.ValidFrom)} < {f}",
            from.AddDays(-1));
    }

    /// <summary>Writes the SELECT as the model's whole (unpartitioned) table, replacing every file it had.</summary>
    private void ReplaceWhole(ModelDefinition model, string select, DateOnly? applied)
    {
        var table = LakeTable.Unpartitioned(model.Schema, model.Table, Fields(Describe(select)));
        using var stager = Lake.BeginStaging($"model-{model.Name}");
        var (path, rows) = Copy(stager, select);
        stager.AddWritten(table, "", path, rows);
        var replace = AllPartitions(Registered(model.Name) ?? table);
        Lake.Register(table);
        Commit(stager, model, applied, replace, table);
    }

    private ModelRunResult RunClean(ModelProject project, ModelDefinition model, DateOnly asOf)
    {
        var spec = model.Clean!;
        var sourceColumns = Describe(QuoteName(spec.Source)).Select(c => c.Name).ToList();
        Exec($"CREATE OR REPLACE TEMP TABLE _clean AS {CleanSqlBuilder.Build(model.Name, spec, Dialect, asOf, sourceColumns)}");
        var rowsIn = Count("SELECT count(*) FROM temp._clean");
        var outputs = CleanSqlBuilder.OutputColumns(spec).Where(c => c.Name != CleanSpec.FileDateOutput).ToList();
        var table = new LakeTable(model.Schema, model.Table, CleanSpec.FileDateOutput, FieldType.Date,
            outputs.Select(c => new FieldSpec(c.Name, FieldTypeOf(c.SqlType.Split('(')[0]), false)).ToList());
        var quarantine = QuarantineTable(project);
        var day = Day(asOf);
        using var stager = Lake.BeginStaging($"model-{model.Name}");
        var clean = Count($"SELECT count(*) FROM temp._clean WHERE {CleanSqlBuilder.ReasonColumn} IS NULL");
        if (clean > 0)
        {
            var (path, rows) = Copy(stager, $"SELECT {string.Join(", ", outputs.Select(c => Quote(c.Name)))} FROM temp._clean WHERE {CleanSqlBuilder.ReasonColumn} IS NULL");
            stager.AddWritten(table, day, path, rows);
        }

        var rejects = $"SELECT {Literal(model.Name)} AS model, {Literal(spec.Source)} AS source_table, source_file, source_row, " +
                      $"{CleanSqlBuilder.ReasonColumn} AS rule, {CleanSqlBuilder.ReasonColumnColumn} AS column_name, {CleanSqlBuilder.RawColumn} AS raw_values " +
                      $"FROM temp._clean WHERE {CleanSqlBuilder.ReasonColumn} IS NOT NULL";
        var others = OtherModelsQuarantine(project, model, $"file_date = {Date(asOf)}");
        var quarantined = WriteQuarantine(stager, quarantine, day, others is null ? rejects : $"{others} UNION ALL {rejects}");
        Lake.Register(table);
        Lake.Register(quarantine);
        Commit(stager, model, asOf, [(table, day), (quarantine, day)], table, quarantine);
        return new ModelRunResult(rowsIn, clean, $"{clean} clean rows, {rowsIn - clean} quarantined ({quarantined} in the day's quarantine)");
    }

    private void RewindClean(ModelProject project, ModelDefinition model, DateOnly from)
    {
        var table = Registered(model.Name);
        var quarantine = QuarantineTable(project);
        var replace = new List<(LakeTable, string)>();
        using var stager = Lake.BeginStaging($"rewind-{model.Name}");
        if (table is not null)
        {
            replace.AddRange(Partitions(model.Name).Where(p => string.CompareOrdinal(p, Day(from)) >= 0).Select(p => (table, p)));
        }

        if (Registered(project.Quarantine) is not null)
        {
            foreach (var p in Partitions(project.Quarantine).Where(p => string.CompareOrdinal(p, Day(from)) >= 0))
            {
                var others = OtherModelsQuarantine(project, model, $"file_date = DATE '{p}'");
                if (others is not null) { WriteQuarantine(stager, quarantine, p, others); }
                replace.Add((quarantine, p));
            }
        }

        var refresh = table is null ? [quarantine] : new[] { table, quarantine };
        Commit(stager, model, from.AddDays(-1), replace, refresh);
    }

    private long WriteQuarantine(LakeStager stager, LakeTable quarantine, string day, string select)
    {
        Exec($"CREATE OR REPLACE TEMP TABLE _out AS {select}");
        var rows = Count("SELECT count(*) FROM temp._out");
        if (rows > 0)
        {
            var (path, written) = Copy(stager, "SELECT * FROM temp._out");
            stager.AddWritten(quarantine, day, path, written);
        }

        return rows;
    }

    /// <summary>The quarantine rows of a day that other clean models wrote (they share the table, each owning its own rows).</summary>
    private string? OtherModelsQuarantine(ModelProject project, ModelDefinition model, string where) =>
        Registered(project.Quarantine) is null || !HasRelation(project.Quarantine) ? null
            : $"SELECT {string.Join(", ", QuarantineColumns.Select(c => Quote(c.Name)))} FROM {QuoteName(project.Quarantine)} WHERE {where} AND model <> {Literal(model.Name)}";

    private static LakeTable QuarantineTable(ModelProject project)
    {
        var dot = project.Quarantine.IndexOf('.', StringComparison.Ordinal);
        return new LakeTable(project.Quarantine[..dot], project.Quarantine[(dot + 1)..], CleanSpec.FileDateOutput, FieldType.Date, QuarantineColumns);
    }

    private static void RequireKeyColumns(ModelDefinition model, IReadOnlyList<string> keys, List<(string Name, string Type)> columns)
    {
        foreach (var k in keys.Where(k => columns.All(c => c.Name != k)))
        {
            throw new SluiceException($"{model.Name}: unique_key column '{k}' is not in the result (columns: {string.Join(", ", columns.Select(c => c.Name))})");
        }
    }

    /// <summary>A keyed result must have one row per key and no NULL key: the error names the model, the key and an example.</summary>
    private void CheckKeys(ModelDefinition model, string relation, IReadOnlyList<string> keys, List<(string Name, string Type)> columns)
    {
        RequireKeyColumns(model, keys, columns);

        var list = string.Join(", ", keys.Select(Quote));
        var nulls = Count($"SELECT count(*) FROM {relation} WHERE {string.Join(" OR ", keys.Select(k => $"{Quote(k)} IS NULL"))}");
        if (nulls > 0)
        {
            throw new SluiceException($"{model.Name}: {nulls} rows of the result have a NULL in unique_key ({string.Join(", ", keys)})");
        }

        var example = QueryAsync($"SELECT {list}, count(*) AS n FROM {relation} GROUP BY {list} HAVING count(*) > 1 LIMIT 1", 1, CancellationToken.None).Result;
        if (example.Rows.Count > 0)
        {
            var shown = string.Join(", ", keys.Select((k, i) => $"{k} = {LakeQueryEngine.FormatValue(example.Rows[0][i])}"));
            throw new SluiceException($"{model.Name}: the result has {example.Rows[0][keys.Count]} rows for {shown}; unique_key ({string.Join(", ", keys)}) must identify one row");
        }
    }
}
