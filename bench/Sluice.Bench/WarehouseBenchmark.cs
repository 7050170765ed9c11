using Sluice.Recipes;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Connectors.Files;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;
using Sluice.Jobs;
using Sluice.Lake;
using Sluice.Models;
using Sluice.Hosting;

namespace Sluice.Bench;

public sealed record WarehouseBenchmarkOptions
{
    public int Customers { get; init; } = 1_000_000;

    public long Sales { get; init; } = 10_000_000;

    public int Days { get; init; } = 30;

    public double MoveRatio { get; init; } = 0.01;

    public IReadOnlyList<WarehouseEngine> Engines { get; init; } = [WarehouseEngine.DuckDb, WarehouseEngine.Postgres];

    /// <summary>
    /// DuckDB's memory limit for the run (SLUICE_DUCKDB_MEMORY). The process peaks at about this plus 300 MiB (the day-1
    /// clean and snapshot of every customer fill DuckDB to its limit): 512MB keeps it under the 1 GB RSS target.
    /// </summary>
    public string DuckDbMemory { get; init; } = "512MB";

    /// <summary>Keys of the snapshot part (check and timestamp strategies over a full export a day); 0 leaves it out.</summary>
    public int SnapshotKeys { get; init; } = 1_000_000;

    /// <summary>Only the snapshot part: no sales-warehouse load and models.</summary>
    public bool SnapshotOnly { get; init; }

    /// <summary>The PostgreSQL database of the run (dropped and created again): two runs at once each need their own.</summary>
    public string PostgresDatabase { get; init; } = "sluice_bench_warehouse";

    /// <summary>A progress reporter per phase (title), or null for none.</summary>
    public Func<string, IProgress<JobProgress>>? Progress { get; init; }
}

/// <summary>One engine's measurements.</summary>
public sealed record WarehouseEngineResult(
    WarehouseEngine Engine, double LoadSeconds, double ModelSeconds, double PeakRssMiB,
    double Scd2MeanSeconds, double Scd2MaxSeconds, double Scd2LastDaySeconds, double ReferenceSeconds,
    long DimRows, long FactRows, long QuarantineRows, long ChangesLastDay)
{
    public double Ratio => Scd2LastDaySeconds / ReferenceSeconds;
}

public sealed record WarehouseBenchmarkReport(string Machine, WarehouseBenchmarkOptions Options, long CustomerRows, long SalesRows, long Moves, double Megabytes, IReadOnlyList<WarehouseEngineResult> Engines)
{
    public IReadOnlyList<SnapshotBenchResult> Snapshots { get; init; } = [];

    /// <summary>The load average when the run ended (1, 5, 15 minutes): the machine may be shared.</summary>
    public string LoadAverage { get; init; } = "";

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench warehouse ({DateTime.UtcNow:yyyy-MM-dd})");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}; DuckDB memory limit {Options.DuckDbMemory}; load average at the end {LoadAverage}");
        if (Snapshots.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine(CultureInfo.InvariantCulture, $"SCD2 snapshot, {Snapshots[0].Keys:N0} keys sent whole each day; day 2: 1% moved, 0.5% re-sent with only updated_at later:");
            sb.AppendLine();
            sb.AppendLine("| engine | strategy | versions opened + closed | model (day 2) | same merge by hand | ratio | target | rows after | peak RSS (day 2) |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
            foreach (var r in Snapshots)
            {
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {r.Engine.ToString().ToLowerInvariant()} | {r.Strategy} | {r.Changes:N0} | {r.ModelSeconds:N2} s | {r.ReferenceSeconds:N2} s | {r.Ratio:N2}x | <= 1.2x | {r.Rows:N0} | {r.PeakRssMiB:N0} MiB (<= 1024) |");
            }
        }

        if (Engines.Count == 0) { return sb.ToString(); }
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Input: {Options.Days} days of customers_*.csv + sales_*.csv, {Megabytes:N0} MB: {CustomerRows:N0} customer rows ({Options.Customers:N0} customers on day 1, then new and changed ones; {Moves:N0} moves, {Options.MoveRatio:P0} a day), {SalesRows:N0} sales rows");
        sb.AppendLine();
        sb.AppendLine("| engine | load (files -> raw) | models, all days | end to end | SCD2 merge per day (mean / max) | SCD2 last day: model | same day, hand-written SQL | ratio | target | peak RSS (Sluice process) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var e in Engines)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {e.Engine.ToString().ToLowerInvariant()} | {e.LoadSeconds:N1} s | {e.ModelSeconds:N1} s | {e.LoadSeconds + e.ModelSeconds:N1} s | {e.Scd2MeanSeconds:N2} s / {e.Scd2MaxSeconds:N2} s | {e.Scd2LastDaySeconds:N2} s ({e.ChangesLastDay:N0} versions changed) | {e.ReferenceSeconds:N2} s | {e.Ratio:N2}x | <= 1.2x | {e.PeakRssMiB:N0} MiB (<= 1024) |");
        }

        sb.AppendLine();
        foreach (var e in Engines)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"- {e.Engine.ToString().ToLowerInvariant()}: dw.dim_customer {e.DimRows:N0} rows, dw.fact_sales {e.FactRows:N0} rows, dw.quarantine {e.QuarantineRows:N0} rows.");
        }

        return sb.ToString();
    }
}

/// <summary>
/// <c>sluice bench warehouse</c>: generates the sales-warehouse exports, then per engine loads them through the recipe's
/// file source and runs its models day by day (the daily job), timing both. The reference is the last day's SCD2
/// merge written by hand on the same engine, from the same dimension state and the same cleaned rows: on PostgreSQL
/// an UPDATE + INSERT in one transaction; on DuckDB the same statements over the dimension's Parquet, written back to
/// Parquet (what the lake needs to hold the result). The ratio is the model's last-day time over the reference's.
/// </summary>
public static class WarehouseBenchmark
{
    private const string Recipe = "sales-warehouse";

    public static async Task<WarehouseBenchmarkReport> RunAsync(string root, WarehouseBenchmarkOptions options, TextWriter log, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        Environment.SetEnvironmentVariable("SLUICE_DUCKDB_MEMORY", options.DuckDbMemory);
        var input = Path.Combine(root, "input");
        var start = new DateOnly(2024, 1, 1);
        var snapshots = new List<SnapshotBenchResult>();
        if (options.SnapshotOnly)
        {
            foreach (var engine in options.Engines)
            {
                snapshots.AddRange(await SnapshotBenchmark.RunAsync(root, engine, await PostgresFor(engine, options.PostgresDatabase, ct).ConfigureAwait(false), options.SnapshotKeys, log, options.Progress, ct).ConfigureAwait(false));
            }

            return new WarehouseBenchmarkReport(MachineInfo.Describe(), options, 0, 0, 0, 0, []) { Snapshots = snapshots, LoadAverage = MachineInfo.LoadAverage() };
        }

        await log.WriteLineAsync($"generating {options.Days} days: {options.Customers:N0} customers, {options.Sales:N0} sales ...").ConfigureAwait(false);
        var generated = new SalesWarehouseGenerator(input, new SalesWarehouseGeneratorOptions
        {
            Days = options.Days, Customers = options.Customers, SalesPerDay = (int)(options.Sales / options.Days), Start = start, Seed = 42, MoveRatio = options.MoveRatio,
        }, TimeProvider.System).Write();
        var megabytes = generated.Files.Sum(f => new FileInfo(f).Length) / 1e6;

        var results = new List<WarehouseEngineResult>();
        foreach (var engine in options.Engines)
        {
            var pg = await PostgresFor(engine, options.PostgresDatabase, ct).ConfigureAwait(false);
            results.Add(await RunEngineAsync(root, input, engine, pg, options, start, log, ct).ConfigureAwait(false));
            if (options.SnapshotKeys > 0)
            {
                snapshots.AddRange(await SnapshotBenchmark.RunAsync(root, engine, pg, options.SnapshotKeys, log, options.Progress, ct).ConfigureAwait(false));
            }
        }

        return new WarehouseBenchmarkReport(MachineInfo.Describe(), options, generated.CustomerRows, generated.SalesRows, generated.Moves, megabytes, results)
        {
            Snapshots = snapshots, LoadAverage = MachineInfo.LoadAverage(),
        };
    }

    /// <summary>The bench's PostgreSQL database, dropped and created again; null for DuckDB.</summary>
    private static async Task<NpgsqlConnectionStringBuilder?> PostgresFor(WarehouseEngine engine, string database, CancellationToken ct)
    {
        if (engine != WarehouseEngine.Postgres) { return null; }
        var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database).Builder();
        await RecreateDatabaseAsync(pg, ct).ConfigureAwait(false);
        return pg;
    }

    private static async Task<WarehouseEngineResult> RunEngineAsync(string root, string input, WarehouseEngine engine, NpgsqlConnectionStringBuilder? pg, WarehouseBenchmarkOptions options, DateOnly start, TextWriter log, CancellationToken ct)
    {
        var name = engine.ToString().ToLowerInvariant();
        var dataDir = new DataDirectory(Path.Combine(root, $"data-{name}"));
        var recipe = new RecipeLoader(RecipeComponents.Create()).Load(Recipe);

        var definition = recipe.Job("daily")!;
        definition = definition with { Factory = ((ModelsJobFactory)definition.Factory).With(engine, pg) };
        var errors = new ConfigErrors();
        var types = FileTypeCatalog.LoadFolder(Path.Combine(recipe.Folder, "filetypes"), errors);
        errors.ThrowIfAny();
        using var services = new EngineServices(dataDir, TimeProvider.System, NullLoggerFactory.Instance);
        var source = new FilesSource(services, Recipe, new FilesOptions { Folder = Recipe, StableAfter = TimeSpan.Zero, OnceWait = TimeSpan.FromSeconds(30), MaxParallelFiles = 1 }, types);
        await using (source.ConfigureAwait(false))
        {
            GC.Collect();
            MachineInfo.ResetPeakRss();
            var last = start.AddDays(options.Days - 1);
            var load = Stopwatch.StartNew();
            foreach (var f in Directory.EnumerateFiles(input).Where(f => !f.Contains(last.ToString("yyyyMMdd", CultureInfo.InvariantCulture), StringComparison.Ordinal)))
            {
                File.Copy(f, Path.Combine(source.Drop.Incoming, Path.GetFileName(f)));
            }

            await log.WriteLineAsync($"{name}: loading {options.Days - 1} days ...").ConfigureAwait(false);
            await DropProgress.WatchAsync(source, options.Progress?.Invoke($"{name} load"), source.RunOnceAsync(ct)).ConfigureAwait(false);
            load.Stop();
            await log.WriteLineAsync($"{name}: loaded in {load.Elapsed.TotalSeconds:N1} s; running the models for {options.Days - 1} days ...").ConfigureAwait(false);
            var runner = new JobRunner(services);
            var models = Stopwatch.StartNew();
            await runner.RunAsync(definition, new JobRequest(DateTimeOffset.UtcNow, Progress: options.Progress?.Invoke($"{name} models"), Trigger: "after_load"), ct).ConfigureAwait(false);
            models.Stop();

            await log.WriteLineAsync($"{name}: models in {models.Elapsed.TotalSeconds:N1} s; keeping the dimension as it is before the last day ...").ConfigureAwait(false);
            var before = await KeepDimensionAsync(engine, services, root, pg, ct).ConfigureAwait(false);

            var loadLast = Stopwatch.StartNew();
            foreach (var f in Directory.EnumerateFiles(input).Where(f => f.Contains(last.ToString("yyyyMMdd", CultureInfo.InvariantCulture), StringComparison.Ordinal)))
            {
                File.Copy(f, Path.Combine(source.Drop.Incoming, Path.GetFileName(f)));
            }

            await source.RunOnceAsync(ct).ConfigureAwait(false);
            loadLast.Stop();
            if (pg is not null) { await BenchPostgres.QuietAsync(pg, ct, "VACUUM ANALYZE dw.dim_customer").ConfigureAwait(false); }
            var modelsLast = Stopwatch.StartNew();
            await runner.RunAsync(definition, new JobRequest(DateTimeOffset.UtcNow, Trigger: "after_load"), ct).ConfigureAwait(false);
            modelsLast.Stop();
            var peak = MachineInfo.PeakRssMiB();

            var dimRuns = runner.Runs.History($"{definition.FullName}/dw.dim_customer", 1000)
                .Where(r => r.Status == JobRunStore.Succeeded && r.EndedAt is not null)
                .Select(r => (Day: DateOnly.FromDateTime(r.AsOf.UtcDateTime), Seconds: (r.EndedAt!.Value - r.StartedAt).TotalSeconds, Changes: r.RowsOut ?? 0))
                .ToList();
            var merges = dimRuns.Where(r => r.Day > start).ToList();
            var lastRun = dimRuns.Single(r => r.Day == last);

            await log.WriteLineAsync($"{name}: reference SCD2 merge of {last:yyyy-MM-dd} ...").ConfigureAwait(false);
            if (pg is not null) { await BenchPostgres.QuietAsync(pg, ct, $"VACUUM ANALYZE {before}").ConfigureAwait(false); }
            var (referenceSeconds, referenceRows) = await ReferenceAsync(engine, services, root, before, last, pg, ct).ConfigureAwait(false);
            var dimRows = await CountAsync(engine, services, pg, "SELECT count(*) FROM dw.dim_customer", ct).ConfigureAwait(false);
            if (referenceRows != dimRows)
            {
                throw new SluiceException($"bench: the hand-written merge gives {referenceRows} dimension rows, the model {dimRows}: they did not do the same work.");
            }

            return new WarehouseEngineResult(
                engine, load.Elapsed.TotalSeconds + loadLast.Elapsed.TotalSeconds, models.Elapsed.TotalSeconds + modelsLast.Elapsed.TotalSeconds, peak,
                merges.Average(r => r.Seconds), merges.Max(r => r.Seconds), lastRun.Seconds, referenceSeconds,
                dimRows, await CountAsync(engine, services, pg, "SELECT count(*) FROM dw.fact_sales", ct).ConfigureAwait(false),
                await CountAsync(engine, services, pg, "SELECT count(*) FROM dw.quarantine", ct).ConfigureAwait(false), lastRun.Changes);
        }
    }

    /// <summary>Copies the dimension before the last day: its Parquet files (duckdb) or a table with the same indexes (postgres).</summary>
    private static async Task<string> KeepDimensionAsync(WarehouseEngine engine, EngineServices services, string root, NpgsqlConnectionStringBuilder? pg, CancellationToken ct)
    {
        if (engine == WarehouseEngine.DuckDb)
        {
            var folder = Path.Combine(root, "reference", "dim_before");
            Directory.CreateDirectory(folder);
            foreach (var f in services.Lake.Files("dw.dim_customer")) { File.Copy(f, Path.Combine(folder, Path.GetFileName(f))); }
            return folder;
        }

        await using var c = new NpgsqlConnection(pg!.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        foreach (var sql in new[]
        {
            "CREATE SCHEMA IF NOT EXISTS bench_ref", "DROP TABLE IF EXISTS bench_ref.dim_before",
            "CREATE TABLE bench_ref.dim_before AS SELECT * FROM dw.dim_customer",
            "CREATE INDEX ON bench_ref.dim_before (customer_key)", "CREATE INDEX ON bench_ref.dim_before (customer_id, valid_from)",
            "CREATE UNIQUE INDEX ON bench_ref.dim_before (customer_id) WHERE is_current",
            // Both start the measured day vacuumed and analysed (SnapshotBenchmark.KeepAsync says why).
            "VACUUM ANALYZE bench_ref.dim_before", "VACUUM ANALYZE dw.dim_customer",
        })
        {
            await using var cmd = new NpgsqlCommand(sql, c);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return "bench_ref.dim_before";
    }

    /// <summary>The same day's SCD2 merge as one would write it by hand; returns its time and the dimension's rows after it.</summary>
    private static async Task<(double Seconds, long Rows)> ReferenceAsync(WarehouseEngine engine, EngineServices services, string root, string before, DateOnly day, NpgsqlConnectionStringBuilder? pg, CancellationToken ct)
    {
        var d = $"DATE '{day:yyyy-MM-dd}'";
        if (engine == WarehouseEngine.DuckDb)
        {
            var staged = services.Lake.Files("staging.stg_customer", [day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)]);
            using var db = DuckDb.OpenMemory(Path.Combine(root, "reference", "tmp"));
            var output = Path.Combine(root, "reference", "dim_after.parquet");
            var clock = Stopwatch.StartNew();
            LakeQueryEngine.Exec(db, $"CREATE TABLE dim AS SELECT * FROM read_parquet({LakeQueryEngine.Literal(Path.Combine(before, "*.parquet"))})");
            LakeQueryEngine.Exec(db, $"CREATE TABLE src AS SELECT customer_id, name, city FROM read_parquet([{string.Join(", ", staged.Select(LakeQueryEngine.Literal))}])");
            LakeQueryEngine.Exec(db, "CREATE TABLE opened AS SELECT s.* FROM src s LEFT JOIN dim c ON c.customer_id = s.customer_id AND c.is_current " +
                                     "WHERE c.customer_id IS NULL OR c.name IS DISTINCT FROM s.name OR c.city IS DISTINCT FROM s.city");
            LakeQueryEngine.Exec(db, $"UPDATE dim SET valid_to = {d}, is_current = FALSE FROM src s WHERE dim.is_current AND dim.customer_id = s.customer_id " +
                                     "AND (dim.name IS DISTINCT FROM s.name OR dim.city IS DISTINCT FROM s.city)");
            LakeQueryEngine.Exec(db, $"INSERT INTO dim SELECT (SELECT max(customer_key) FROM dim) + row_number() OVER (ORDER BY customer_id), customer_id, name, city, {d}, NULL, TRUE FROM opened");
            LakeQueryEngine.Exec(db, $"COPY dim TO {LakeQueryEngine.Literal(output)} (FORMAT parquet)");
            clock.Stop();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT count(*) FROM dim";
            return (clock.Elapsed.TotalSeconds, Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture));
        }

        await using var c = new NpgsqlConnection(pg!.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        await using (var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false))
        {
            foreach (var sql in new[]
            {
                $"CREATE TEMP TABLE opened ON COMMIT DROP AS SELECT s.customer_id, s.name, s.city FROM staging.stg_customer s LEFT JOIN {before} c ON c.customer_id = s.customer_id AND c.is_current " +
                $"WHERE s.file_date = {d} AND (c.customer_id IS NULL OR c.name IS DISTINCT FROM s.name OR c.city IS DISTINCT FROM s.city)",
                $"UPDATE {before} c SET valid_to = {d}, is_current = FALSE FROM staging.stg_customer s WHERE s.file_date = {d} AND c.is_current AND c.customer_id = s.customer_id " +
                "AND (c.name IS DISTINCT FROM s.name OR c.city IS DISTINCT FROM s.city)",
                $"INSERT INTO {before} SELECT (SELECT max(customer_key) FROM {before}) + row_number() OVER (ORDER BY customer_id), customer_id, name, city, {d}, NULL, TRUE FROM opened",
            })
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

    private static async Task<long> CountAsync(WarehouseEngine engine, EngineServices services, NpgsqlConnectionStringBuilder? pg, string sql, CancellationToken ct)
    {
        if (engine == WarehouseEngine.DuckDb)
        {
            return Convert.ToInt64(services.Query.Query(sql).Rows[0][0], CultureInfo.InvariantCulture);
        }

        await using var c = new NpgsqlConnection(pg!.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private static async Task RecreateDatabaseAsync(NpgsqlConnectionStringBuilder pg, CancellationToken ct)
    {
        var admin = new NpgsqlConnectionStringBuilder(pg.ConnectionString) { Database = "postgres" };
        await using var c = new NpgsqlConnection(admin.ConnectionString);
        try
        {
            await c.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw new SluiceException($"bench warehouse: PostgreSQL {PostgresConnectionOptions.Describe(admin)} did not answer ({e.Message}); start it (scripts/services.sh up) or run with --engine duckdb", e);
        }

        foreach (var sql in new[] { $"DROP DATABASE IF EXISTS {pg.Database} WITH (FORCE)", $"CREATE DATABASE {pg.Database}" })
        {
            await using var cmd = new NpgsqlCommand(sql, c);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }
}
