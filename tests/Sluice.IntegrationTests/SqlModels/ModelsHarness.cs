using System.Globalization;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;
using Sluice.Models;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>
/// Models over one source lake table (<c>raw.src</c>, a DATE partition per day) on one engine, without a recipe: a test
/// writes a day's source rows as a SELECT, writes model files, and processes the days as the models job does. On
/// PostgreSQL every harness has a database of its own, dropped at the end.
/// </summary>
internal sealed class ModelsHarness : IAsyncDisposable
{
    public const string Source = "raw.src";

    private readonly Engine _engine = new();
    private readonly TempFolder _folder = new("models");
    private readonly NpgsqlConnectionStringBuilder? _pg;

    private ModelsHarness(string engine, NpgsqlConnectionStringBuilder? pg)
    {
        EngineName = engine;
        _pg = pg;
    }

    public string EngineName { get; }

    public EngineServices Services => _engine.Services;

    /// <summary>The PostgreSQL warehouse's settings; null on DuckDB.</summary>
    public NpgsqlConnectionStringBuilder? Postgres => _pg;

    public string Folder => _folder.Sub("models");

    public static async Task<ModelsHarness> CreateAsync(string engine)
    {
        NpgsqlConnectionStringBuilder? pg = null;
        if (engine == "postgres")
        {
            pg = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = $"md_test_{Guid.NewGuid():N}"[..24] };
            await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {pg.Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        return new ModelsHarness(engine, pg);
    }

    /// <summary>Writes (or rewrites) the model file <c>models/&lt;schema&gt;/&lt;table&gt;.sql</c>.</summary>
    public void Model(string name, string text)
    {
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        var dir = Path.Combine(Folder, name[..dot]);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, name[(dot + 1)..] + ".sql"), text);
    }

    /// <summary>Makes <paramref name="select"/>'s rows the source's partition of <paramref name="day"/> (replacing what it held).</summary>
    public void Day(string day, string select)
    {
        var lake = _engine.Services.Lake;
        using var db = Sluice.Lake.DuckDb.OpenMemory(Path.Combine(_engine.DataRoot, "tmp", "test-duckdb"));
        using var stager = lake.BeginStaging("test-source");
        var path = stager.NextPath();
        LakeQueryEngine.Exec(db, $"CREATE TABLE t AS {select}");
        LakeQueryEngine.Exec(db, $"COPY (SELECT * FROM t) TO '{path}' (FORMAT parquet)");
        var fields = new List<FieldSpec>();
        long rows;
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = "DESCRIBE t";
            using var r = cmd.ExecuteReader();
            while (r.Read()) { fields.Add(new FieldSpec(r.GetString(0), Sluice.Models.Embedded.LakeWarehouse.FieldTypeOf(r.GetString(1)), false)); }
        }

        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = "SELECT count(*) FROM t";
            rows = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        var table = new LakeTable("raw", "src", "day", FieldType.Date, fields);
        stager.AddWritten(table, day, path, rows);
        lake.Register(table);
        lake.Commit(stager, replacePartitions: [(table, day)]);
    }

    public ModelProject Project()
    {
        var errors = new ConfigErrors();
        var project = ModelProject.Load(Folder, [Source], "dw.quarantine", errors);
        if (errors.All.Count > 0) { throw new SluiceException(string.Join("\n", errors.All)); }
        return project;
    }

    /// <param name="scope">The models job (<c>recipe/job</c>) the warehouse works for.</param>
    public IWarehouse Open(string scope = "test/models") => _pg is null
        ? new Sluice.Models.Embedded.LakeWarehouse(_engine.Services, scope)
        : new Sluice.Models.Postgres.PostgresWarehouse(_engine.Services, scope, _pg);

    public DayProcessor Processor(string scope = "test/models") => new(_engine.Services, Project(), scope, () => Open(scope));

    /// <summary>Processes the days whose source changed (and <paramref name="requested"/>), as a models job run does.</summary>
    public Task<JobOutcome> RunAsync(params string[] requested) =>
        Processor().ProcessAsync(requested.Select(d => DateOnly.Parse(d, CultureInfo.InvariantCulture)).ToList(), "manual", null, CancellationToken.None);

    /// <summary>Processes the stale days up to the as-of day (every day up to it that never ran), forcing <paramref name="forced"/>, as a scheduled run does.</summary>
    public Task<JobOutcome> RunAsOfAsync(string asOf, params string[] forced) =>
        Processor().ProcessAsync(
            new DayRequest(forced.Select(d => DateOnly.Parse(d, CultureInfo.InvariantCulture)).ToList(), DateOnly.Parse(asOf, CultureInfo.InvariantCulture)),
            "schedule", null, CancellationToken.None);

    /// <summary>The model runs recorded since the run <paramref name="afterId"/>, as <c>model@yyyy-MM-dd</c> sorted; and the latest run id.</summary>
    public (string[] Runs, long Last) RunsSince(long afterId)
    {
        var runs = new Sluice.Jobs.JobRunStore(_engine.Services.Metadata, TimeProvider.System).History("test/models", 100_000).Where(r => r.Id > afterId).ToList();
        return (runs.Select(r => $"{r.Job["test/models/".Length..]}@{r.AsOf:yyyy-MM-dd}").Order(StringComparer.Ordinal).ToArray(),
            runs.Count == 0 ? afterId : runs.Max(r => r.Id));
    }

    /// <summary>A query's rows on the warehouse, cells joined by '|', formatted alike on both engines.</summary>
    public async Task<string[]> Lines(string sql)
    {
        var warehouse = Open();
        await using (warehouse)
        {
            await warehouse.PrepareAsync(Project(), SourceSnapshot.Capture(_engine.Services.Lake, [Source]), CancellationToken.None);
            var result = await warehouse.QueryAsync(sql, 10_000, CancellationToken.None);
            return result.Rows.Select(r => string.Join("|", r.Select(Format))).ToArray();
        }
    }

    public static string Format(object? value) => value switch
    {
        null => "NULL",
        bool b => b ? "true" : "false",
        DateTime d when d.TimeOfDay == TimeSpan.Zero => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        _ => LakeQueryEngine.FormatValue(value),
    };

    public async ValueTask DisposeAsync()
    {
        _engine.Dispose();
        _folder.Dispose();
        if (_pg is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_pg.Database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
