using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.IntegrationTests.Support;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// A database of its own with a table <c>items</c> (and <c>nokey</c>, without a primary key: in the recipe unless
/// <c>keyless</c> is false, since a table without key cannot resume an initial snapshot), a recipe <c>snap</c>
/// whose <c>cdc</c> pipeline streams them into a change log in schema <c>sink</c> of the same database, keyed by
/// (id, _lsn, _seq) so every change and every snapshot read is a row of its own; <see cref="Mirror"/> is the state
/// that log describes (each key's last change, unless a delete).
/// </summary>
internal sealed class CdcSnapshotScenario : IAsyncDisposable
{
    private readonly TempFolder _folder = new("sluice-snap");

    private CdcSnapshotScenario(string id) => Id = id;

    public string Id { get; }

    public string Database => $"sluice_snap_{Id}";

    public string Slot => $"sluice_snap_{Id}";

    public PostgresConnectionOptions Pg => PostgresConnectionOptions.FromEnvironment().WithDatabase(Database);

    public string RecipesRoot => _folder.Path;

    public string DataRoot => _folder.Sub("data");

    public Dictionary<string, string> Environment => new(StringComparer.Ordinal) { ["SLUICE_RECIPES"] = RecipesRoot };

    /// <summary>The state the change log describes: per id its last change by (_lsn, _seq), deletes left out.</summary>
    public const string Mirror =
        "SELECT id, v, note FROM (SELECT DISTINCT ON (id) id, v, note, _op FROM sink.items ORDER BY id, _lsn DESC, _seq DESC) last WHERE _op <> 'd'";

    public static async Task<CdcSnapshotScenario> CreateAsync(int rows, bool snapshot, int batchRows = 10_000, bool keyless = true, string statusInterval = "200ms")
    {
        var scenario = new CdcSnapshotScenario(Guid.NewGuid().ToString("N")[..10]);
        await using (var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {scenario.Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        await scenario.ExecuteAsync(
            "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);" +
            $"INSERT INTO items SELECT g, g, 'row ' || g FROM generate_series(1, {rows}) g;" +
            "CREATE TABLE nokey (a int, b text);");
        var folder = Path.Combine(scenario.RecipesRoot, "snap");
        Directory.CreateDirectory(folder);
        Directory.CreateDirectory(scenario.DataRoot);
        await File.WriteAllTextAsync(Path.Combine(folder, "recipe.yaml"), $$"""
            name: snap
            pipelines:
              cdc:
                source:
                  type: postgres_cdc
                  connection: { database: "{{scenario.Database}}" }
                  publication: {{scenario.Slot}}
                  slot: {{scenario.Slot}}
                  tables:
                    items: { on_update: emit, on_delete: emit }
                    {{(keyless ? "nokey: {}" : "# no table without key")}}
                  snapshot: {{(snapshot ? "true" : "false")}}
                  batch_rows: {{batchRows}}
                  status_interval: {{statusInterval}}
                  heartbeat: 1s
                sinks:
                  - type: postgres
                    connection: '{{scenario.Pg.ConnectionString("sluice-sink").Replace("'", "''", StringComparison.Ordinal)}}'
                    schema: sink
                    keys: { items: [id, _lsn, _seq] }
            """);
        return scenario;
    }

    public SluiceProcess Run(IDictionary<string, string>? extra = null)
    {
        var env = Environment;
        foreach (var (k, v) in extra ?? new Dictionary<string, string>()) { env[k] = v; }
        return SluiceProcess.StartIn(RecipesRoot, DataRoot, env, "run", "snap");
    }

    public SluiceProcess Snapshot(params string[] args) => SluiceProcess.StartIn(RecipesRoot, DataRoot, Environment, ["cdc", "snapshot", "snap/cdc", .. args]);

    /// <summary>Rows of the source and of the mirror that the other lacks (0: equal, every column).</summary>
    public async Task<(long Missing, long Extra)> DifferenceAsync()
    {
        if (await ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sink' AND table_name = 'items'") == 0)
        {
            return (await ScalarAsync<long>("SELECT count(*) FROM items"), 0);
        }

        return (await ScalarAsync<long>($"SELECT count(*) FROM (SELECT id, v, note FROM items EXCEPT {Mirror}) x"),
                await ScalarAsync<long>($"SELECT count(*) FROM ({Mirror} EXCEPT SELECT id, v, note FROM items) x"));
    }

    /// <summary>Waits until the mirror equals the source; else fails with the difference and what <paramref name="explain"/> (a query) says.</summary>
    public async Task WaitForEqualAsync(TimeSpan timeout, string? explain = null)
    {
        await CdcScenario.WaitUntilAsync(async () => await DifferenceAsync() == (0, 0), timeout,
            async () => $"source and mirror differ: {await DifferenceAsync()} (missing, extra){(explain is null ? "" : $"; {await ScalarAsync<string>(explain)}")}");
    }

    /// <summary>The snapshot requests as the metadata store holds them (read beside the running process).</summary>
    public SnapshotRequest? Request(long id)
    {
        using var services = new EngineServices(new DataDirectory(DataRoot), TimeProvider.System, NullLoggerFactory.Instance);
        return PgSnapshotRequests.Get(services, id);
    }

    public Task<T> ScalarAsync<T>(string sql) => PgTestDatabase.ScalarAsync<T>(Pg, sql);

    public Task ExecuteAsync(string sql) => PgTestDatabase.ExecuteAsync(Pg, sql);

    public async ValueTask DisposeAsync()
    {
        await using (var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await admin.OpenAsync();
            await PgTestDatabase.DropAsync(admin, Slot, Database);
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _folder.Dispose();
    }
}
