using System.Globalization;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Examples;

/// <summary>
/// One example recipe's private world on the shared servers: a copy of <c>recipes/examples/&lt;name&gt;</c> (with the
/// names that must not clash between test runs replaced, each of which must be in the shipped file), its own Postgres
/// database (the child process gets it as <c>PGDATABASE</c>), a data folder, and the replication slots it names.
/// </summary>
internal sealed class ExampleWorld : IAsyncDisposable
{
    private readonly TempFolder _folder = new("sluice-example");
    private readonly List<string> _slots = [];

    private ExampleWorld(string name)
    {
        Name = name;
        Id = Guid.NewGuid().ToString("N")[..10];
        Pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(Database);
        Directory.CreateDirectory(DataRoot);
    }

    public string Name { get; }

    public string Id { get; }

    public string Database => $"sluice_ex_{Id}";

    public PostgresConnectionOptions Pg { get; }

    public string RecipeFolder => _folder.Sub(Name);

    public string DataRoot => _folder.Sub("data");

    /// <summary>Environment of a child <c>sluice</c>: this world's database; add more before starting.</summary>
    public Dictionary<string, string> Env { get; } = new(StringComparer.Ordinal);

    /// <summary>Copies the shipped example, applies the replacements (a <c>slot: x</c> replacement's slot is dropped at the end), creates the database.</summary>
    public static async Task<ExampleWorld> CreateAsync(string name, params (string What, string With)[] replace)
    {
        var world = new ExampleWorld(name);
        var shipped = Path.Combine(TestPaths.Recipes, "examples", name);
        foreach (var file in Directory.EnumerateFiles(shipped, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(world.RecipeFolder, Path.GetRelativePath(shipped, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var text = await File.ReadAllTextAsync(file);
            if (Path.GetFileName(file) == "recipe.yaml")
            {
                foreach (var (what, with) in replace)
                {
                    text.ShouldContain(what, Case.Sensitive, $"the shipped {name}/recipe.yaml no longer contains '{what}'");
                    text = text.Replace(what, with, StringComparison.Ordinal);
                    if (with.StartsWith("slot: ", StringComparison.Ordinal)) { world._slots.Add(with["slot: ".Length..]); }
                }
            }

            await File.WriteAllTextAsync(target, text);
        }

        await using (var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {world.Database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        world.Env["PGDATABASE"] = world.Database;
        return world;
    }

    /// <summary><c>sluice run &lt;recipe&gt; --once</c> in this world: everything available now, then exit 0.</summary>
    public async Task RunOnceAsync()
    {
        using var run = SluiceProcess.Start(DataRoot, Env, "run", RecipeFolder, "--once");
        (await run.WaitAsync(TimeSpan.FromMinutes(3))).ShouldBe(0, run.Stderr);
    }

    public Task ExecuteAsync(string sql) => PgTestDatabase.ExecuteAsync(Pg, sql);

    /// <summary>Each row of <paramref name="sql"/> as its values joined by '|' (NULL as "NULL"), in the query's order; none while the table does not exist yet.</summary>
    public async Task<List<string>> RowsAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        var rows = new List<string>();
        try
        {
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
            {
                rows.Add(string.Join('|', Enumerable.Range(0, r.FieldCount).Select(i => r.IsDBNull(i) ? "NULL" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture))));
            }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return rows;
        }

        return rows;
    }

    /// <summary>Polls <paramref name="read"/> until it gives <paramref name="expected"/>; fails with what it last gave.</summary>
    public static async Task<List<string>> WaitForAsync(Func<Task<List<string>>> read, List<string> expected, string what, SluiceProcess? run = null, int seconds = 90)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var rows = await read();
            if (rows.SequenceEqual(expected)) { return rows; }
            if (DateTime.UtcNow > until || run is { HasExited: true })
            {
                rows.ShouldBe(expected, $"{what} (within {seconds} s){(run is null ? "" : $"\nstderr:\n{run.Stderr}")}");
                return rows;
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await using (var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await admin.OpenAsync();
            foreach (var slot in _slots)
            {
                // The test's own slot: a killed run's walsender that is busy decoding may hold it for minutes before it notices.
                await using (var end = new NpgsqlCommand($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active", admin))
                {
                    await end.ExecuteNonQueryAsync();
                }

                await PgTestDatabase.DropAsync(admin, slot, Database);
            }
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }

        _folder.Dispose();
    }
}
