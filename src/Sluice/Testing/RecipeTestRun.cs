using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Models;

namespace Sluice.Testing;

/// <summary>
/// <c>sluice test</c>: every case of a recipe (or the one named), each in a data folder of its own; a case that uses
/// PostgreSQL (SQL inputs, <c>postgres:</c> targets, the PostgreSQL warehouse) also gets a database of its own,
/// <c>sluice_test_&lt;random&gt;</c>, named to the recipe through <c>PGDATABASE</c> and dropped afterwards.
/// With <see cref="Servers"/>, a recipe with models runs each case a second time with its models on PostgreSQL.
/// </summary>
public sealed class RecipeTestRun(ComponentRegistry components, Func<DataDirectory, IEngineServices> createServices, TextWriter output)
{
    public bool Servers { get; init; }

    public bool Keep { get; init; }

    /// <returns>How many cases failed.</returns>
    public async Task<int> RunAsync(string recipeNameOrPath, string? only, CancellationToken ct)
    {
        var folder = RecipeLoader.ResolveFolder(recipeNameOrPath);
        var recipe = Load(folder);
        var cases = CaseFile.Find(folder, only).Select(CaseFile.Load).ToList();
        var warehouses = Servers && recipe.Jobs.Any(j => j.Factory is ModelsJobFactory) ? new[] { false, true } : [false];
        var failed = 0;
        var total = 0;
        foreach (var test in cases)
        {
            foreach (var postgresWarehouse in warehouses)
            {
                total++;
                var label = $"{recipe.Name}/{test.Name}{(postgresWarehouse ? " (models on postgres)" : "")}";
                var result = await RunCaseAsync(folder, test, postgresWarehouse, ct).ConfigureAwait(false);
                if (!result.Passed) { failed++; }
                await output.WriteLineAsync(result.Passed
                    ? $"{label}: ok ({result.Steps} step(s), {result.Expectations} table(s) compared, {result.Took.TotalSeconds:0.0} s)"
                    : $"{label}: FAILED").ConfigureAwait(false);
                if (result.Detail.Length > 0) { await output.WriteAsync(result.Detail).ConfigureAwait(false); }
            }
        }

        await output.WriteLineAsync($"{recipe.Name}: {total - failed} of {total} case(s) passed").ConfigureAwait(false);
        return failed;
    }

    private async Task<CaseResult> RunCaseAsync(string folder, TestCase test, bool postgresWarehouse, CancellationToken ct)
    {
        var usesPostgres = postgresWarehouse || test.Steps.Any(s => s.Inputs.Any(i => i.Kind == CaseInputKind.Sql) || s.Expect.Any(e => e.Place == OutputPlace.Postgres));
        var usesClickHouse = test.Steps.Any(s => s.Expect.Any(e => e.Place == OutputPlace.ClickHouse));
        var id = $"sluice_test_{Guid.NewGuid():N}"[..24];
        var saved = new Dictionary<string, string?>(StringComparer.Ordinal);
        void Set(string variable, string value)
        {
            saved.TryAdd(variable, Environment.GetEnvironmentVariable(variable));
            Environment.SetEnvironmentVariable(variable, value);
        }

        if (usesPostgres)
        {
            try
            {
                await AdminAsync($"CREATE DATABASE {id}", ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
            {
                return new CaseResult(test.Name, false, $"  this case needs PostgreSQL ({PostgresConnectionOptions.FromEnvironment()}, from the PG* variables), which did not answer: {e.Message}{Environment.NewLine}", 0, 0, TimeSpan.Zero);
            }

            // Recipes name their database as ${PGDATABASE}: the case's own is the one they get when loaded.
            Set("PGDATABASE", id);
            if (postgresWarehouse) { Set(ModelsOptions.EngineVariable, "postgres"); }
        }

        // Likewise ${CLICKHOUSE_DATABASE}: the sink creates it, the case's targets name it, and it is dropped after.
        if (usesClickHouse) { Set("CLICKHOUSE_DATABASE", id); }
        var usesRedis = test.Steps.Any(s => s.Expect.Any(e => e.Place == OutputPlace.Redis));
        CaseServers? servers = null;
        try
        {
            servers = await CaseServers.StartAsync(test, id, Set, ct).ConfigureAwait(false);
            var runner = new CaseRunner(createServices) { Keep = Keep, Servers = servers };
            return await runner.RunAsync(() => Load(folder), test, ct).ConfigureAwait(false);
        }
        finally
        {
            if (servers is not null) { await servers.DisposeAsync().ConfigureAwait(false); }
            foreach (var (variable, value) in saved) { Environment.SetEnvironmentVariable(variable, value); }
            if (usesRedis)
            {
                try
                {
                    await RedisOutput.DeleteAsync(id + ":").ConfigureAwait(false);
                }
                catch (StackExchange.Redis.RedisConnectionException)
                {
                    // The case already failed saying Redis did not answer; there is nothing of it to delete.
                }
            }
            if (usesPostgres) { await DropDatabaseAsync(id).ConfigureAwait(false); }
            if (usesClickHouse)
            {
                // ${CLICKHOUSE_DATABASE} is the id; a database named with ${SLUICE_NAME_SUFFIX} ends with its random part.
                // Either holds the case's random part, which no other run's name can: these are the case's own.
                using var clickHouse = new Connectors.ClickHouse.ClickHouseClient(OutputReader.ClickHouseUrl(), TimeSpan.FromSeconds(30));
                var own = await clickHouse.QueryAsync(
                    $"SELECT name FROM system.databases WHERE position(name, {Connectors.ClickHouse.ClickHouseClient.Literal(id["sluice_test_".Length..])}) > 0 FORMAT TSV", CancellationToken.None).ConfigureAwait(false);
                foreach (var database in own.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    await clickHouse.QueryAsync($"DROP DATABASE IF EXISTS {Connectors.ClickHouse.ClickHouseClient.Quote(database)}", CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Drops the case's database, with the replication slots a CDC source made in it (a slot keeps a database from
    /// being dropped; slots are per database, so these are the case's own).
    /// </summary>
    private static async Task DropDatabaseAsync(string database)
    {
        NpgsqlConnection.ClearAllPools();
        await AdminAsync(
            $"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '{database}' AND active_pid IS NOT NULL",
            CancellationToken.None).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await AdminAsync($"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{database}'", CancellationToken.None).ConfigureAwait(false);
                break;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 20)
            {
                // The walsender just terminated has not released the slot yet.
                await Task.Delay(TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
            }
        }

        await AdminAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
    }

    // The caller's registry: recipes under test may use components of the recipe project, which the engine never names.
    private Recipe Load(string folder) => new RecipeLoader(components).Load(folder);

    private static async Task AdminAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionOptions.FromEnvironment().WithDatabase("postgres").ConnectionString("sluice-test"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
