using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Jobs;
using Sluice.Lake;
using Sluice.Models;
using Sluice.Hosting;

namespace Sluice.Bench;

/// <summary>One strategy's second-day merge over the whole key set, against the same merge written by hand.</summary>
public sealed record SnapshotBenchResult(
    WarehouseEngine Engine, string Strategy, long Keys, long Changes, double ModelSeconds, double ReferenceSeconds, long Rows, double PeakRssMiB)
{
    public double Ratio => ModelSeconds / ReferenceSeconds;
}

/// <summary>
/// The snapshot part of <c>bench warehouse</c>: a source of <c>keys</c> rows, sent whole every day (a full export), into
/// an SCD2 snapshot per strategy: <c>check</c> (name and city compared) and <c>timestamp</c> (a version when updated_at
/// moves, valid from it). Day 1 loads every key; on day 2 1% of the keys move city (and updated_at) and another 0.5%
/// are re-sent with a later updated_at but the same values (a version for the timestamp strategy, none for check).
/// The measured run is day 2's model run as <c>job_runs</c> records it; the reference is the same merge by hand on the
/// same engine from a copy of the table before day 2 (on DuckDB written back to Parquet, as the lake needs), and both
/// must end with the same rows.
/// </summary>
public static class SnapshotBenchmark
{
    private const string Source = "raw.keys";
    private static readonly DateOnly Day1 = new(2024, 1, 1);
    private static readonly DateOnly Day2 = new(2024, 1, 2);

    private static readonly (string Name, string Header, string Columns, string Changed, string ValidFrom)[] Strategies =
    [
        ("check", "tracked: [name, city]", "id, name, city", "c.name IS DISTINCT FROM s.name OR c.city IS DISTINCT FROM s.city", $"DATE '{Day2:yyyy-MM-dd}'"),
        ("timestamp", "strategy: timestamp\nupdated_at: updated_at", "id, name, city, updated_at", "s.updated_at > c.updated_at", "s.updated_at"),
    ];

    public static async Task<IReadOnlyList<SnapshotBenchResult>> RunAsync(
        string root, WarehouseEngine engine, NpgsqlConnectionStringBuilder? pg, int keys, TextWriter log, Func<string, IProgress<JobProgress>>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(log);
        var name = engine.ToString().ToLowerInvariant();
        var folder = Path.Combine(root, $"snapshot-{name}");
        using var services = new EngineServices(new DataDirectory(Path.Combine(folder, "data")), TimeProvider.System, NullLoggerFactory.Instance);
        await log.WriteLineAsync($"{name}: snapshot of {keys:N0} keys, day 1 (every key new) ...").ConfigureAwait(false);
        using var db = DuckDb.OpenMemory(Path.Combine(folder, "tmp"));
        WriteSource(services, db, Day1, keys);
        var runs = new List<(string Model, string Scope, DayProcessor Processor, string Before)>();
        Func<IWarehouse>? open = null;
        ModelProject? first = null;
        foreach (var strategy in Strategies)
        {
            var scope = $"bench/snapshot_{strategy.Name}";
            var models = Path.Combine(folder, $"models-{strategy.Name}");
            Directory.CreateDirectory(Path.Combine(models, "dw"));
            await File.WriteAllTextAsync(Path.Combine(models, "dw", $"snap_{strategy.Name}.sql"),
                $"/*\nkind: snapshot\nunique_key: id\n{strategy.Header}\nsurrogate_key: sk\nvalid_from: valid_from\nvalid_to: valid_to\nis_current: is_current\nhard_deletes: ignore\n*/\n" +
                $"SELECT {strategy.Columns} FROM {Source} WHERE day = {{{{ as_of }}}}\n", ct).ConfigureAwait(false);
            var errors = new ConfigErrors();
            var project = ModelProject.Load(models, [Source], "dw.quarantine", errors);
            errors.ThrowIfAny();
            var options = new ModelsOptions { Project = project, Engine = engine };
            var processor = new DayProcessor(services, project, scope, () => Warehouses.Open(services, options, scope, engine, pg));
            (open, first) = (open ?? (() => Warehouses.Open(services, options, scope, engine, pg)), first ?? project);
            await processor.ProcessAsync([Day1], "bench", progress?.Invoke($"{name} snapshot {strategy.Name} day 1"), ct).ConfigureAwait(false);
            var model = $"dw.snap_{strategy.Name}";
            runs.Add((model, scope, processor, await KeepAsync(services, folder, model, pg, ct).ConfigureAwait(false)));
        }

        // Day 2 lands only now, so that day 1's processing did not see (and run) it.
        WriteSource(services, db, Day2, keys);
        if (pg is not null)
        {
            // Day 2 reaches PostgreSQL (the source's mirror) before anything is measured, not inside the first model's run.
            var warehouse = open!();
            await using (warehouse.ConfigureAwait(false))
            {
                await warehouse.PrepareAsync(first!, SourceSnapshot.Capture(services.Lake, first!.Sources), ct).ConfigureAwait(false);
            }
        }

        var results = new List<SnapshotBenchResult>();
        foreach (var (strategy, (model, scope, processor, before)) in Strategies.Zip(runs))
        {
            GC.Collect();
            MachineInfo.ResetPeakRss();
            await log.WriteLineAsync($"{name}: {strategy.Name} snapshot, day 2 ...").ConfigureAwait(false);
            if (pg is not null) { await BenchPostgres.QuietAsync(pg, ct, $"VACUUM ANALYZE {Source}", $"VACUUM ANALYZE {model}").ConfigureAwait(false); }
            await processor.ProcessAsync([Day2], "bench", progress?.Invoke($"{name} snapshot {strategy.Name} day 2"), ct).ConfigureAwait(false);
            var peak = MachineInfo.PeakRssMiB();
            var run = new JobRunStore(services.Metadata, TimeProvider.System).History($"{scope}/{model}", 10)
                .First(r => r.Status == JobRunStore.Succeeded && r.EndedAt is not null && DateOnly.FromDateTime(r.AsOf.UtcDateTime) == Day2);

            await log.WriteLineAsync($"{name}: {strategy.Name} snapshot, the same merge by hand ...").ConfigureAwait(false);
            if (pg is not null) { await BenchPostgres.QuietAsync(pg, ct, $"VACUUM ANALYZE {Source}", $"VACUUM ANALYZE {before}").ConfigureAwait(false); }
            var (referenceSeconds, referenceRows) = engine == WarehouseEngine.DuckDb
                ? Reference(services, folder, before, strategy)
                : await ReferenceAsync(pg!, before, strategy, ct).ConfigureAwait(false);
            var rows = await CountAsync(services, pg, $"SELECT count(*) FROM {model}", ct).ConfigureAwait(false);
            if (rows != referenceRows)
            {
                throw new SluiceException($"bench: the hand-written {strategy.Name} merge gives {referenceRows} rows, the model {rows}: they did not do the same work.");
            }

            results.Add(new SnapshotBenchResult(engine, strategy.Name, keys, run.RowsOut ?? 0, (run.EndedAt!.Value - run.StartedAt).TotalSeconds, referenceSeconds, rows, peak));
        }

        return results;
    }

    /// <summary>A day of the source: every key; day 2 moves 1% of them and re-sends 0.5% with only updated_at later.</summary>
    private static void WriteSource(EngineServices services, DuckDB.NET.Data.DuckDBConnection db, DateOnly day, int keys)
    {
        var table = new LakeTable("raw", "keys", "day", FieldType.Date,
            [new FieldSpec("id", FieldType.Integer, true), new FieldSpec("name", FieldType.String, false), new FieldSpec("city", FieldType.String, false), new FieldSpec("updated_at", FieldType.Timestamp, false)]);
        services.Lake.Register(table);
        var select = day == Day1
            ? $"SELECT i AS id, 'name ' || i AS name, 'city ' || (i % 5000) AS city, TIMESTAMP '2024-01-01 06:00:00' + to_seconds(i % 36000) AS updated_at FROM range(1, {keys} + 1) r(i)"
            : $"SELECT i AS id, 'name ' || i AS name, CASE WHEN i % 100 = 0 THEN 'moved ' || (i % 7000) ELSE 'city ' || (i % 5000) END AS city, " +
              $"CASE WHEN i % 100 = 0 OR i % 200 = 1 THEN TIMESTAMP '2024-01-02 06:00:00' ELSE TIMESTAMP '2024-01-01 06:00:00' END + to_seconds(i % 36000) AS updated_at " +
              $"FROM range(1, {keys} + 1) r(i)";
        using var stager = services.Lake.BeginStaging("bench-snapshot");
        var path = stager.NextPath();
        LakeQueryEngine.Exec(db, $"COPY ({select}) TO {LakeQueryEngine.Literal(path)} (FORMAT parquet)");
        var partition = day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        stager.AddWritten(table, partition, path, keys);
        services.Lake.Commit(stager, replacePartitions: [(table, partition)]);
    }

    /// <summary>The table before day 2: its Parquet files (duckdb) or a copy with the model's indexes (postgres).</summary>
    private static async Task<string> KeepAsync(EngineServices services, string folder, string model, NpgsqlConnectionStringBuilder? pg, CancellationToken ct)
    {
        var copy = model.Replace("dw.", "before_", StringComparison.Ordinal);
        if (pg is null)
        {
            var kept = Path.Combine(folder, "reference", copy);
            Directory.CreateDirectory(kept);
            foreach (var f in services.Lake.Files(model)) { File.Copy(f, Path.Combine(kept, Path.GetFileName(f))); }
            return kept;
        }

        await using var c = new NpgsqlConnection(pg.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        foreach (var sql in new[]
        {
            "CREATE SCHEMA IF NOT EXISTS bench_ref", $"DROP TABLE IF EXISTS bench_ref.{copy}", $"CREATE TABLE bench_ref.{copy} AS SELECT * FROM {model}",
            $"CREATE INDEX ON bench_ref.{copy} (sk)", $"CREATE INDEX ON bench_ref.{copy} (id, valid_from)",
            $"CREATE UNIQUE INDEX ON bench_ref.{copy} (id) WHERE is_current",
            // Both tables start day 2 vacuumed and analysed, as a day-old table would be after autovacuum: otherwise
            // autovacuum may wake on the model's freshly loaded table in the middle of its measured run and not the copy's.
            $"VACUUM ANALYZE bench_ref.{copy}", $"VACUUM ANALYZE {model}",
        })
        {
            await using var cmd = new NpgsqlCommand(sql, c) { CommandTimeout = 0 };
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return $"bench_ref.{copy}";
    }

    private static (double Seconds, long Rows) Reference(EngineServices services, string folder, string before, (string Name, string Header, string Columns, string Changed, string ValidFrom) s)
    {
        var staged = services.Lake.Files(Source, [Day2.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)]);
        using var db = DuckDb.OpenMemory(Path.Combine(folder, "reference", "tmp"));
        var output = Path.Combine(folder, "reference", $"{s.Name}_after.parquet");
        var clock = Stopwatch.StartNew();
        LakeQueryEngine.Exec(db, $"CREATE TABLE t AS SELECT * FROM read_parquet({LakeQueryEngine.Literal(Path.Combine(before, "*.parquet"))})");
        LakeQueryEngine.Exec(db, $"CREATE TABLE s AS SELECT {s.Columns} FROM read_parquet([{string.Join(", ", staged.Select(LakeQueryEngine.Literal))}])");
        foreach (var sql in Merge("t", "s", "TRUE", s)) { LakeQueryEngine.Exec(db, sql); }
        LakeQueryEngine.Exec(db, $"COPY t TO {LakeQueryEngine.Literal(output)} (FORMAT parquet)");
        clock.Stop();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM t";
        return (clock.Elapsed.TotalSeconds, Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture));
    }

    private static async Task<(double Seconds, long Rows)> ReferenceAsync(NpgsqlConnectionStringBuilder pg, string before, (string Name, string Header, string Columns, string Changed, string ValidFrom) s, CancellationToken ct)
    {
        await using var c = new NpgsqlConnection(pg.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        await using (var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false))
        {
            foreach (var sql in Merge(before, Source, $"s.day = DATE '{Day2:yyyy-MM-dd}'", s, "TEMP TABLE", "ON COMMIT DROP"))
            {
                await using var cmd = new NpgsqlCommand(sql, c, tx) { CommandTimeout = 0 };
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            await tx.CommitAsync(ct).ConfigureAwait(false);
        }

        watch.Stop();
        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {before}", c);
        return (watch.Elapsed.TotalSeconds, Convert.ToInt64(await count.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture));
    }

    /// <summary>The SCD2 merge as one writes it by hand: the versions to open, the current ones closed, the new ones inserted.</summary>
    private static string[] Merge(string target, string source, string day, (string Name, string Header, string Columns, string Changed, string ValidFrom) s, string temp = "TABLE", string onCommit = "")
    {
        var columns = s.Columns.Split(", ");
        return
        [
            $"CREATE {temp} opened {onCommit} AS SELECT {string.Join(", ", columns.Select(c => $"s.{c}"))}, {s.ValidFrom} AS vf FROM {source} s LEFT JOIN {target} c ON c.id = s.id AND c.is_current " +
            $"WHERE {day} AND (c.id IS NULL OR {s.Changed})",
            $"UPDATE {target} c SET valid_to = {s.ValidFrom}, is_current = FALSE FROM {source} s WHERE {day} AND c.is_current AND c.id = s.id AND ({s.Changed})",
            $"INSERT INTO {target} (sk, {s.Columns}, valid_from, valid_to, is_current) " +
            $"SELECT (SELECT max(sk) FROM {target}) + row_number() OVER (ORDER BY id), {s.Columns}, vf, NULL, TRUE FROM opened",
        ];
    }

    private static async Task<long> CountAsync(EngineServices services, NpgsqlConnectionStringBuilder? pg, string sql, CancellationToken ct)
    {
        if (pg is null) { return Convert.ToInt64(services.Query.Query(sql).Rows[0][0], CultureInfo.InvariantCulture); }
        await using var c = new NpgsqlConnection(pg.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }
}
