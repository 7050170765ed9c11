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
        var now = _services.Time.GetUtcNow();
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
        Lake.Register(table);
        Commit(stager, model, asOf, replace, table);
        return new ModelRunResult(rows, rows, $"{rows} rows in partition {column}={Day(asOf)}");
    }

    private void RewindPartitions(ModelDefinition model, DateOnly from)
    {
        var table = Registered(model.Name);
        if (table is null) { SaveState(model, null); return; }
        var doomed = Lake.Partitions(model.Name).Where(p => string.CompareOrdinal(p, Day(from)) >= 0).Select(p => (table, p)).ToList();
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
        var exists = old is not null && HasRelation(model.Name) && Lake.Files(model.Name).Count > 0;
        var on = string.Join(" AND ", spec.UniqueKey.Select(k => $"t.{Quote(k)} = o.{Quote(k)}"));
        var order = string.Join(", ", spec.UniqueKey.Select(k => $"o.{Quote(k)}"));
        var target = QuoteName(model.Name);
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

        if (changed == 0 && exists)
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
        if (Registered(model.Name) is null || Lake.Files(model.Name).Count == 0) { SaveState(model, null); return; }
        var keep = spec.CanRewindByDate ? $"SELECT * FROM {QuoteName(model.Name)} WHERE {Quote(spec.RewindBy!)} < {Date(from)}" : $"SELECT * FROM {QuoteName(model.Name)} WHERE false";
        ReplaceWhole(model, keep, spec.CanRewindByDate ? from.AddDays(-1) : null);
    }

    private ModelRunResult RunSnapshot(ModelDefinition model, DateOnly asOf)
    {
        var spec = model.Snapshot!;
        Exec($"CREATE OR REPLACE TEMP TABLE _src AS {Dialect.Render(model, asOf)}");
        var columns = Describe("temp._src");
        CheckKeys(model, "temp._src", spec.UniqueKey, columns);
        var engineColumns = new[] { spec.SurrogateKey, spec.ValidFrom, spec.ValidTo, spec.IsCurrent }.OfType<string>().ToList();
        if (columns.FirstOrDefault(c => engineColumns.Contains(c.Name)) is { Name: not null } clash)
        {
            throw new SluiceException($"{model.Name}: the result has a column '{clash.Name}', which the snapshot fills itself; leave it out of the SELECT");
        }

        var tracked = SnapshotSql.Tracked(model, columns.Select(c => c.Name).ToList());
        var rowsIn = Count("SELECT count(*) FROM temp._src");
        var exists = Registered(model.Name) is not null && Lake.Files(model.Name).Count > 0;
        if (rowsIn == 0 && exists)
        {
            // No source rows is no snapshot (no file that day), never "every key disappeared".
            SaveState(model, asOf);
            return new ModelRunResult(0, 0, "source empty: nothing changed");
        }

        var names = columns.Select(c => c.Name).ToList();
        var d = Date(asOf);
        string select;
        long opened, closed;
        if (!exists)
        {
            opened = rowsIn;
            closed = 0;
            var keyOrder = string.Join(", ", spec.UniqueKey.Select(k => $"s.{Quote(k)}"));
            select = $"SELECT {(spec.SurrogateKey is { } sk ? $"CAST(row_number() OVER (ORDER BY {keyOrder}) AS BIGINT) AS {Quote(sk)}, " : "")}" +
                     $"{string.Join(", ", names.Select(n => $"s.{Quote(n)}"))}, {d} AS {Quote(spec.ValidFrom)}, CAST(NULL AS DATE) AS {Quote(spec.ValidTo)}, TRUE AS {Quote(spec.IsCurrent)} FROM temp._src s";
        }
        else
        {
            // One pass builds the new table with a mark on what changed, so counting costs no second join.
            var sql = new SnapshotSql(model, names, tracked, QuoteName(model.Name), "temp._src", d);
            Exec($"CREATE OR REPLACE TEMP TABLE _new AS {sql.KeptAndClosedMarked} UNION ALL BY NAME SELECT *, FALSE AS _closed, TRUE AS _opened FROM ({sql.Opened})");
            closed = Count("SELECT count(*) FROM temp._new WHERE _closed");
            opened = Count("SELECT count(*) FROM temp._new WHERE _opened");
            if (opened == 0 && closed == 0)
            {
                SaveState(model, asOf);
                return new ModelRunResult(rowsIn, 0, "no change");
            }

            select = "SELECT * EXCLUDE (_closed, _opened) FROM temp._new";
        }

        ReplaceWhole(model, select, asOf);
        return new ModelRunResult(rowsIn, opened + closed, $"{opened} versions opened, {closed} closed");
    }

    private void RewindSnapshot(ModelDefinition model, DateOnly from)
    {
        if (Registered(model.Name) is null || Lake.Files(model.Name).Count == 0) { SaveState(model, null); return; }
        var spec = model.Snapshot!;
        var f = Date(from);
        var reopened = $"{Quote(spec.ValidTo)} >= {f}";
        ReplaceWhole(model,
            $"SELECT * REPLACE (CASE WHEN {reopened} THEN CAST(NULL AS DATE) ELSE {Quote(spec.ValidTo)} END AS {Quote(spec.ValidTo)}, " +
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
            replace.AddRange(Lake.Partitions(model.Name).Where(p => string.CompareOrdinal(p, Day(from)) >= 0).Select(p => (table, p)));
        }

        if (Registered(project.Quarantine) is not null)
        {
            foreach (var p in Lake.Partitions(project.Quarantine).Where(p => string.CompareOrdinal(p, Day(from)) >= 0))
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

    /// <summary>A keyed result must have one row per key and no NULL key: the error names the model, the key and an example.</summary>
    private void CheckKeys(ModelDefinition model, string relation, IReadOnlyList<string> keys, List<(string Name, string Type)> columns)
    {
        foreach (var k in keys.Where(k => columns.All(c => c.Name != k)))
        {
            throw new SluiceException($"{model.Name}: unique_key column '{k}' is not in the result (columns: {string.Join(", ", columns.Select(c => c.Name))})");
        }

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
