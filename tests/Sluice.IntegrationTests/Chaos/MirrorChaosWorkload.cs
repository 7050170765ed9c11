using System.Globalization;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// A source database of its own for a mirror chaos test, and a random workload on it: small transactions of inserts,
/// updates (some leaving a TOASTed value alone, some changing a row twice), deletes, key changes and now and then a
/// TRUNCATE, on three tables: <c>items</c> (DEFAULT identity, TOASTed bodies, numeric, timestamps), <c>accounts</c> and
/// <c>pairs</c> (a composite key with text, REPLICA IDENTITY FULL).
/// </summary>
internal sealed class MirrorChaosWorkload : IAsyncDisposable
{
    /// <summary>Each mirrored table with its key columns and every column, in the order the comparison reads them.</summary>
    public static readonly (string Table, string[] Key, string[] Columns)[] Tables =
    [
        ("items", ["id"], ["id", "name", "qty", "price", "body", "updated"]),
        ("accounts", ["id"], ["id", "email", "active", "score"]),
        ("pairs", ["k1", "k2"], ["k1", "k2", "val"]),
    ];

    private const string Schema = """
        CREATE SEQUENCE ids START 1000;
        CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), body text, updated timestamptz);
        CREATE TABLE accounts (id int PRIMARY KEY, email text, active boolean, score double precision);
        CREATE TABLE pairs (k1 int, k2 text, val text, PRIMARY KEY (k1, k2));
        ALTER TABLE pairs REPLICA IDENTITY FULL;
        INSERT INTO items SELECT g, 'item ' || g, g % 7, g * 1.25, CASE WHEN g % 3 = 0 THEN (SELECT string_agg(md5(random()::text || s || g), '') FROM generate_series(1, 150) s) ELSE 'short ' || g END,
            date_trunc('milliseconds', now()) FROM generate_series(1, 60) g;
        INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 2 = 0, g / 3.0 FROM generate_series(1, 40) g;
        INSERT INTO pairs SELECT g % 10, 'k' || g, 'v' || g FROM generate_series(1, 30) g;
        """;

    /// <summary>A text over 2 KB of random hex: incompressible enough that Postgres stores it out of line (TOAST).</summary>
    private const string Toasted = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 150))";

    private readonly string _admin;
    private readonly Random _random;

    public MirrorChaosWorkload(int seed)
    {
        Id = Guid.NewGuid().ToString("N")[..10];
        _random = new Random(seed);
        _admin = ServerSettings.PostgresConnectionString;
        Pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(Database);
    }

    public string Id { get; }

    public string Database => $"sluice_mirror_{Id}";

    public string Slot => $"sluice_mirror_{Id}";

    public PostgresConnectionOptions Pg { get; }

    public long Transactions { get; private set; }

    public long Truncates { get; private set; }

    /// <summary>The source block of a recipe streaming the three tables, every update and delete emitted.</summary>
    /// <summary>
    /// Writes a recipe <paramref name="name"/> under <paramref name="temp"/> streaming these tables into every mirror
    /// target, and returns its data folder and the environment that finds the recipe.
    /// </summary>
    /// <summary>The mirrors the recipe writes (all of <see cref="MirrorTargets.All"/> unless a test names fewer).</summary>
    public IReadOnlyList<MirrorTarget> Targets { get; private set; } = MirrorTargets.All;

    public async Task<(string Data, Dictionary<string, string> Env)> WriteRecipeAsync(TempFolder temp, string name, IReadOnlyList<MirrorTarget>? targets = null)
    {
        Targets = targets ?? MirrorTargets.All;
        var recipe = temp.Sub(name);
        Directory.CreateDirectory(recipe);
        await File.WriteAllTextAsync(Path.Combine(recipe, "recipe.yaml"), $"""
            name: {name}
            pipelines:
              cdc:
            {SourceYaml}
                sinks:
            {string.Join('\n', Targets.Select(t => t.SinkYaml(Id)))}
            """);
        var data = temp.Sub("data");
        Directory.CreateDirectory(data);
        return (data, new Dictionary<string, string>(StringComparer.Ordinal) { ["SLUICE_RECIPES"] = temp.Path });
    }

    public string SourceYaml => $$"""
            source:
              type: postgres_cdc
              connection: { host: {{Pg.Host}}, port: {{Pg.Port}}, user: {{Pg.User}}, database: "{{Database}}" }
              publication: {{Slot}}
              slot: {{Slot}}
              tables:
                items: { on_update: emit, on_delete: emit }
                accounts: { on_update: emit, on_delete: emit }
                pairs: { on_update: emit, on_delete: emit }
              batch_rows: 200
              status_interval: 200ms
              heartbeat: 1s
        """;

    public async Task CreateAsync()
    {
        await ExecuteAsync(_admin, $"CREATE DATABASE {Database}");
        await ExecuteAsync(Pg.ConnectionString("sluice-test"), Schema);
    }

    /// <summary>Runs random transactions until <paramref name="ct"/> is cancelled (a transaction in flight finishes first).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync(CancellationToken.None);
        while (!ct.IsCancellationRequested)
        {
            var statements = Enumerable.Range(0, _random.Next(1, 5)).Select(_ => Statement()).ToList();
            await using (var cmd = new NpgsqlCommand("BEGIN; " + string.Join("; ", statements) + "; COMMIT;", connection))
            {
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }

            Transactions++;
            try
            {
                await Task.Delay(_random.Next(20, 80), ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private string Statement()
    {
        const string anyItem = "(SELECT id FROM items ORDER BY random() LIMIT 1)";
        const string anyAccount = "(SELECT id FROM accounts ORDER BY random() LIMIT 1)";
        const string anyPair = "(SELECT k1, k2 FROM pairs ORDER BY random() LIMIT 1)";
        var roll = _random.Next(1000);
        if (roll < 4)
        {
            Truncates++;
            return roll < 2 ? "TRUNCATE accounts" : "TRUNCATE items, pairs";
        }

        return (roll % 16) switch
        {
            0 or 1 => $"INSERT INTO items SELECT nextval('ids'), 'new', {_random.Next(100)}, {_random.Next(10_000)} / 100.0, " +
                      $"{(_random.Next(3) == 0 ? Toasted : "'small'")}, date_trunc('milliseconds', now()) FROM generate_series(1, {_random.Next(1, 4)})",
            // Leaves the body alone: a TOASTed one arrives marked unchanged.
            2 or 3 => $"UPDATE items SET qty = qty + 1, name = name || '+', updated = date_trunc('milliseconds', clock_timestamp()) WHERE id = {anyItem}",
            4 => $"UPDATE items SET body = {(_random.Next(2) == 0 ? Toasted : "'rewritten'")}, price = NULL WHERE id = {anyItem}",
            5 => $"DELETE FROM items WHERE id = {anyItem}",
            // A key change: a delete of the old key and an insert of the new one, the TOASTed body unchanged.
            6 => $"UPDATE items SET id = nextval('ids') WHERE id = {anyItem}",
            7 => $"UPDATE items SET qty = 1 WHERE id = (SELECT min(id) FROM items); UPDATE items SET qty = 2, name = 'twice' WHERE id = (SELECT min(id) FROM items)",
            8 => $"UPDATE items SET qty = (qty * 2) % 1000 WHERE id % {_random.Next(5, 12)} = 0",
            9 => $"INSERT INTO accounts VALUES (nextval('ids'), 'a' || currval('ids') || '@example.com', {(_random.Next(2) == 0 ? "true" : "false")}, {(_random.NextDouble() * 1000).ToString("R", CultureInfo.InvariantCulture)})",
            10 => $"UPDATE accounts SET score = score / 3, active = NOT active WHERE id = {anyAccount}",
            11 => $"DELETE FROM accounts WHERE id = {anyAccount}",
            12 => $"INSERT INTO pairs VALUES ({_random.Next(10)}, 'n' || nextval('ids'), 'v')",
            13 => $"UPDATE pairs SET val = val || '!' WHERE (k1, k2) = {anyPair}",
            14 => $"UPDATE pairs SET k2 = k2 || '-' || nextval('ids') WHERE (k1, k2) = {anyPair}",
            _ => $"DELETE FROM pairs WHERE (k1, k2) = {anyPair}",
        };
    }

    /// <summary>A table's rows as the comparison reads them (every column, <see cref="MirrorRows.Canonical"/> values).</summary>
    public async Task<List<string>> RowsAsync(string table, string[] columns)
    {
        await using var connection = new NpgsqlConnection(Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT {string.Join(", ", columns)} FROM {table}", connection);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await r.ReadAsync())
        {
            rows.Add(MirrorRows.Line(Enumerable.Range(0, columns.Length).Select(i => r.IsDBNull(i) ? null : r.GetValue(i))));
        }

        return rows;
    }

    /// <summary>Runs <paramref name="sql"/> on the source database.</summary>
    public Task ExecuteAsync(string sql) => ExecuteAsync(Pg.ConnectionString("sluice-test"), sql);

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await using var admin = new NpgsqlConnection(_admin);
            await admin.OpenAsync();
            await PgTestDatabase.DropAsync(admin, Slot, Database);
            await ClickHouseMirrorReader.QueryAsync($"DROP DATABASE IF EXISTS `{ClickHouseMirrorReader.Database(Id)}`");
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or HttpRequestException or TaskCanceledException)
        {
            // Best effort (a loaded ClickHouse may take longer than the client's timeout to drop a database): names are
            // unique per test, so leftovers never disturb another run.
        }
    }
}
