using Sluice.Recipes;
using System.Globalization;
using System.Text;
using Npgsql;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;
using Sluice.Models;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>
/// The sales-warehouse recipe on one engine, in a temporary data folder: on PostgreSQL a database of its own
/// (<c>sw_test_&lt;random&gt;</c>, dropped at the end), so tests never see each other's tables. A test may run a copy of
/// the recipe with some files changed (<see cref="EditRecipe"/>).
/// </summary>
internal sealed class WarehouseHarness : IAsyncDisposable
{
    public const string RecipeName = "sales-warehouse";

    private readonly Engine _engine;
    private readonly TempFolder _recipeCopy = new("sw-recipe");
    private readonly NpgsqlConnectionStringBuilder? _pg;

    private WarehouseHarness(string engine, Engine core, NpgsqlConnectionStringBuilder? pg)
    {
        EngineName = engine;
        _engine = core;
        _pg = pg;
        CopyDirectory(TestPaths.Recipe(RecipeName), RecipeFolder);
    }

    public string EngineName { get; }

    public Engine Engine => _engine;

    public string DataRoot => _engine.DataRoot;

    public string RecipeFolder => _recipeCopy.Sub(RecipeName);

    public string Incoming => Path.Combine(DataRoot, RecipeName, "incoming");

    public string Processed => Path.Combine(DataRoot, RecipeName, "processed");

    public string Failed => Path.Combine(DataRoot, RecipeName, "failed");

    /// <summary>The PostgreSQL database of this harness (null on duckdb).</summary>
    public string? Database => _pg?.Database;

    /// <param name="server">An admin connection string of another PostgreSQL server than the shared one (a test's own).</param>
    public static async Task<WarehouseHarness> CreateAsync(string engine, TimeProvider? time = null, string? server = null)
    {
        NpgsqlConnectionStringBuilder? pg = null;
        if (engine == "postgres")
        {
            pg = new NpgsqlConnectionStringBuilder(server ?? ServerSettings.PostgresConnectionString) { Database = $"sw_test_{Guid.NewGuid():N}"[..24] };
            await using var admin = new NpgsqlConnection(server ?? ServerSettings.PostgresConnectionString);
            try
            {
                await admin.OpenAsync();
            }
            catch (NpgsqlException e)
            {
                throw new InvalidOperationException($"PostgreSQL at {ServerSettings.PgHost}:{ServerSettings.PgPort} did not answer: {ServerSettings.Hint}", e);
            }

            await using var create = new NpgsqlCommand($"CREATE DATABASE {pg.Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        return new WarehouseHarness(engine, new Engine(time), pg);
    }

    /// <summary>Changes one file of this harness's copy of the recipe (before <see cref="Recipe"/> is loaded).</summary>
    public void EditRecipe(string relativePath, Func<string, string> edit)
    {
        var path = Path.Combine(RecipeFolder, relativePath);
        File.WriteAllText(path, edit(File.ReadAllText(path)));
    }

    /// <summary>The recipe copy, its models job bound to this harness's engine (and database).</summary>
    public Recipe Recipe()
    {
        var recipe = new RecipeLoader(RecipeComponents.Create()).Load(RecipeFolder);
        var jobs = recipe.Jobs.Select(j => j.Factory is ModelsJobFactory f
            ? j with { Factory = f.With(EngineName == "postgres" ? WarehouseEngine.Postgres : WarehouseEngine.DuckDb, _pg) }
            : j).ToList();
        return new Recipe { Name = recipe.Name, Folder = recipe.Folder, Description = recipe.Description, Pipelines = recipe.Pipelines, Jobs = jobs };
    }

    public ModelsJobFactory Factory() => (ModelsJobFactory)Recipe().Job("daily")!.Factory;

    public void Drop(string name, string content) => Drop(name, Encoding.UTF8.GetBytes(content));

    public void Drop(string name, byte[] content)
    {
        Directory.CreateDirectory(Incoming);
        File.WriteAllBytes(Path.Combine(Incoming, name), content);
    }

    /// <summary><c>sluice run sales-warehouse --once</c>, in process: load what waits, then model the changed days.</summary>
    public async Task<int> RunOnceAsync()
    {
        var host = new RecipeHost(Recipe(), _engine.Services);
        await using (host)
        {
            return await host.RunOnceAsync(CancellationToken.None);
        }
    }

    /// <summary>The daily job as of a day (a manual or scheduled run), or over a range (a backfill).</summary>
    public async Task<JobOutcome> RunJobAsync(DateOnly asOf, DateOnly? from = null, DateOnly? to = null, string trigger = "manual")
    {
        var job = Recipe().Job("daily")!;
        var request = new JobRequest(new DateTimeOffset(asOf.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), from, to, Trigger: trigger);
        return await new Sluice.Jobs.JobRunner(_engine.Services).RunAsync(job, request, CancellationToken.None);
    }

    /// <summary>Rows of a query on this harness's warehouse, each cell formatted the same way on both engines.</summary>
    public async Task<List<string[]>> RowsAsync(string sql)
    {
        QueryResult result;
        if (_pg is null)
        {
            result = _engine.Services.Query.Query(sql);
        }
        else
        {
            await using var c = new NpgsqlConnection(_pg.ConnectionString);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand(sql, c);
            await using var r = await cmd.ExecuteReaderAsync();
            var rows = new List<object?[]>();
            while (await r.ReadAsync())
            {
                var row = new object?[r.FieldCount];
                for (var i = 0; i < row.Length; i++) { row[i] = r.IsDBNull(i) ? null : r.GetValue(i); }
                rows.Add(row);
            }

            result = new QueryResult(Enumerable.Range(0, r.FieldCount).Select(r.GetName).ToList(), rows);
        }

        return result.Rows.Select(row => row.Select(Format).ToArray()).ToList();
    }

    public async Task<long> CountAsync(string sql) => long.Parse((await RowsAsync(sql))[0][0], CultureInfo.InvariantCulture);

    /// <summary>A whole table as sorted lines (for comparing runs and engines), with its column names first.</summary>
    public async Task<string> DumpAsync(string table)
    {
        var rows = await RowsAsync($"SELECT * FROM {table}");
        var header = string.Join("|", (await ColumnsAsync(table)));
        return header + "\n" + string.Join("\n", rows.Select(r => string.Join("|", r)).Order(StringComparer.Ordinal));
    }

    private async Task<List<string>> ColumnsAsync(string table)
    {
        if (_pg is null)
        {
            return _engine.Services.Query.Query($"SELECT * FROM {table} LIMIT 0").Columns.ToList();
        }

        await using var c = new NpgsqlConnection(_pg.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT * FROM {table} LIMIT 0", c);
        await using var r = await cmd.ExecuteReaderAsync();
        return Enumerable.Range(0, r.FieldCount).Select(r.GetName).ToList();
    }

    public static readonly string[] ModelTables =
    [
        "staging.stg_customer", "staging.stg_sales", "dw.quarantine", "dw.dim_customer", "dw.dim_product", "dw.dim_shop", "dw.fact_sales",
        "mart.customer_ytd_spending", "mart.customer_days_since_last_purchase", "mart.current_customer",
    ];

    /// <summary>Every model table, dumped: equal dumps mean equal warehouses.</summary>
    public async Task<Dictionary<string, string>> DumpAllAsync()
    {
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in ModelTables) { all[t] = await DumpAsync(t); }
        return all;
    }

    public static string Format(object? value) => value switch
    {
        null => "NULL",
        bool b => b ? "true" : "false",
        DateTime d when d.TimeOfDay == TimeSpan.Zero => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        _ => LakeQueryEngine.FormatValue(value),
    };

    public async ValueTask DisposeAsync()
    {
        _engine.Dispose();
        _recipeCopy.Dispose();
        if (_pg is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_pg.ConnectionString) { Database = "postgres" }.ConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_pg.Database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
    }

    internal static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
