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
public sealed class RecipeTestRun(Func<DataDirectory, IEngineServices> createServices, TextWriter output)
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
        var runner = new CaseRunner(createServices) { Keep = Keep };
        var usesPostgres = postgresWarehouse || test.Steps.Any(s => s.Inputs.Any(i => i.Kind == CaseInputKind.Sql) || s.Expect.Any(e => e.Place == OutputPlace.Postgres));
        if (!usesPostgres) { return await runner.RunAsync(() => Load(folder), test, ct).ConfigureAwait(false); }
        var database = $"sluice_test_{Guid.NewGuid():N}"[..24];
        var saved = (Pg: Environment.GetEnvironmentVariable("PGDATABASE"), Engine: Environment.GetEnvironmentVariable(ModelsOptions.EngineVariable));
        try
        {
            await AdminAsync($"CREATE DATABASE {database}", ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
        {
            return new CaseResult(test.Name, false, $"  this case needs PostgreSQL ({PostgresConnectionOptions.FromEnvironment()}, from the PG* variables), which did not answer: {e.Message}{Environment.NewLine}", 0, 0, TimeSpan.Zero);
        }

        try
        {
            // Recipes name their database as ${PGDATABASE}: the case's own is the one they get when loaded below.
            Environment.SetEnvironmentVariable("PGDATABASE", database);
            if (postgresWarehouse) { Environment.SetEnvironmentVariable(ModelsOptions.EngineVariable, "postgres"); }
            return await runner.RunAsync(() => Load(folder), test, ct).ConfigureAwait(false);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PGDATABASE", saved.Pg);
            Environment.SetEnvironmentVariable(ModelsOptions.EngineVariable, saved.Engine);
            NpgsqlConnection.ClearAllPools();
            await AdminAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static Recipe Load(string folder) => new RecipeLoader(Components.Create()).Load(folder);

    private static async Task AdminAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionOptions.FromEnvironment().WithDatabase("postgres").ConnectionString("sluice-test"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
