using System.Text.Json;
using Npgsql;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Models;

namespace Sluice.Testing;

/// <summary>
/// Reads the actual rows of an expectation's output, only the compared columns, in their order: a lake table through
/// the query engine (a model table of a models job on PostgreSQL from PostgreSQL), a sink's table from its server.
/// A table or column that is not there is a <see cref="FixtureException"/> at the expectation's line.
/// </summary>
public sealed class OutputReader(Recipe recipe, IEngineServices services, string caseFile)
{
    private static readonly TimeSpan ClickHouseTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The case's key prefix (for <c>redis:</c>) and captured APIs (for <c>http:</c>).</summary>
    public CaseServers? Servers { get; init; }

    public async Task<IReadOnlyList<object?[]>> ReadAsync(CaseExpectation expect, IReadOnlyList<string> columns, bool expectedEmpty, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(expect);
        if (expect.Place == OutputPlace.Redis)
        {
            var rows = await RedisOutput.ReadAsync(Servers?.KeyPrefix ?? "", expect.Table, ct).ConfigureAwait(false);
            Require(expect, columns, RedisOutput.Columns);
            return rows.Select(r => columns.Select(c => r[c]).ToArray()).ToList();
        }

        if (expect.Place == OutputPlace.Http) { return Received(expect, columns); }
        if (expect.Place == OutputPlace.DeadLetters) { return DeadLetters(expect, columns); }
        if (expect.Place == OutputPlace.ClickHouse) { return await ClickHouseAsync(expect, columns, ct).ConfigureAwait(false); }
        if (expect.Place == OutputPlace.Postgres) { return await PostgresAsync(expect, PostgresConnectionOptions.FromEnvironment().ConnectionString("sluice-test"), columns, ct).ConfigureAwait(false); }
        if (PostgresModels(expect.Table) is { } warehouse) { return await PostgresAsync(expect, warehouse, columns, ct).ConfigureAwait(false); }
        return Lake(expect, columns, expectedEmpty);
    }

    /// <summary>The connection of the models job that builds <paramref name="table"/> on PostgreSQL, or null when the lake has it.</summary>
    private string? PostgresModels(string table)
    {
        var job = recipe.Jobs.Select(j => j.Factory).OfType<ModelsJobFactory>()
            .FirstOrDefault(f => f.Options.EffectiveEngine(f.EngineOverride) == WarehouseEngine.Postgres && (f.LakeTables.Contains(table, StringComparer.Ordinal) || f.Options.Quarantine == table));
        return job is null ? null : (job.Postgres?.ConnectionString ?? PostgresConnectionOptions.FromEnvironment().WithDatabase(job.Options.Database).ConnectionString("sluice-test"));
    }

    private List<object?[]> Lake(CaseExpectation expect, IReadOnlyList<string> columns, bool expectedEmpty)
    {
        var table = services.Lake.Table(expect.Table);
        if (table is null)
        {
            // A table the recipe writes but that received nothing yet is empty, which an empty expectation accepts.
            var declared = recipe.Pipelines.Select(p => (object)p.Source).Concat(recipe.Jobs.Select(j => j.Factory)).OfType<IWritesLakeTables>().SelectMany(w => w.LakeTables);
            if (expectedEmpty && declared.Contains(expect.Table, StringComparer.Ordinal)) { return []; }
            var held = services.Lake.Tables().Select(t => t.QualifiedName).Order(StringComparer.Ordinal).ToList();
            throw new FixtureException(caseFile, expect.Line, $"table: the lake has no table '{expect.Table}' (it holds: {(held.Count == 0 ? "nothing" : string.Join(", ", held))})");
        }

        var present = services.Query.Query($"SELECT * FROM {Quote(expect.Table)} LIMIT 0").Columns;
        Require(expect, columns, present);
        return services.Query.Query($"SELECT {string.Join(", ", columns.Select(Quote))} FROM {Quote(expect.Table)}").Rows.ToList();
    }

    private async Task<List<object?[]>> PostgresAsync(CaseExpectation expect, string connectionString, IReadOnlyList<string> columns, CancellationToken ct)
    {
        var (schema, name) = Split(expect.Table);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        var present = new List<string>();
        await using (var cmd = new NpgsqlCommand("SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position", connection))
        {
            cmd.Parameters.AddWithValue(schema);
            cmd.Parameters.AddWithValue(name);
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) { present.Add(reader.GetString(0)); }
        }

        if (present.Count == 0)
        {
            throw new FixtureException(caseFile, expect.Line, $"PostgreSQL database '{connection.Database}' has no table {expect.Table}");
        }

        Require(expect, columns, present);
        var rows = new List<object?[]>();
        await using (var cmd = new NpgsqlCommand($"SELECT {string.Join(", ", columns.Select(c => Quote(c) + "::text"))} FROM {Quote(schema)}.{Quote(name)}", connection))
        {
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                rows.Add(Enumerable.Range(0, columns.Count).Select(i => reader.IsDBNull(i) ? null : (object?)reader.GetString(i)).ToArray());
            }
        }

        return rows;
    }

    private async Task<List<object?[]>> ClickHouseAsync(CaseExpectation expect, IReadOnlyList<string> columns, CancellationToken ct)
    {
        var (database, name) = Split(expect.Table);
        using var client = new ClickHouseClient(ClickHouseUrl(), ClickHouseTimeout);
        var engine = (await client.QueryAsync($"SELECT engine FROM system.tables WHERE database = {ClickHouseClient.Literal(database)} AND name = {ClickHouseClient.Literal(name)} FORMAT TSV", ct).ConfigureAwait(false)).Trim();
        if (engine.Length == 0) { throw new FixtureException(caseFile, expect.Line, $"ClickHouse has no table {expect.Table}"); }
        var described = await client.QueryAsync($"DESCRIBE TABLE {ClickHouseClient.Quote(database)}.{ClickHouseClient.Quote(name)} FORMAT TSV", ct).ConfigureAwait(false);
        var present = described.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split('\t')[0]).ToList();
        Require(expect, columns, present);
        // A replacing table shows one row per key only once merged: FINAL is what its readers see.
        var final = engine.Contains("Replacing", StringComparison.Ordinal) || engine.Contains("Collapsing", StringComparison.Ordinal) ? " FINAL" : "";
        var text = await client.QueryAsync(
            $"SELECT {string.Join(", ", columns.Select((c, i) => $"toString({ClickHouseClient.Quote(c)}) AS c{i}"))} FROM {ClickHouseClient.Quote(database)}.{ClickHouseClient.Quote(name)}{final} FORMAT JSONEachRow", ct).ConfigureAwait(false);
        var rows = new List<object?[]>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // Aliased c0..cN: JSONEachRow (every ClickHouse version has it) names each value, whatever the column is called.
            using var row = JsonDocument.Parse(line);
            rows.Add(Enumerable.Range(0, columns.Count).Select(i => row.RootElement.GetProperty($"c{i}") is { ValueKind: JsonValueKind.String } v ? (object?)v.GetString() : null).ToArray());
        }

        return rows;
    }

    private static readonly IReadOnlyList<string> DeadLetterColumns = ["source", "position", "reason", "payload", "status"];

    /// <summary>Every letter of the case's data folder (a case's run is its only writer), as rows of <see cref="DeadLetterColumns"/>.</summary>
    private List<object?[]> DeadLetters(CaseExpectation expect, IReadOnlyList<string> columns)
    {
        Require(expect, columns, DeadLetterColumns);
        return services.DeadLetters.List(limit: int.MaxValue).Select(d => columns.Select(c => (object?)(c switch
        {
            "source" => d.Source,
            "position" => d.Position,
            "reason" => d.Reason,
            "payload" => d.Payload,
            _ => d.Status,
        })).ToArray()).ToList();
    }

    /// <summary>Every object the API received, as rows; a column no object has is a fixture error (once something arrived).</summary>
    private List<object?[]> Received(CaseExpectation expect, IReadOnlyList<string> columns)
    {
        var received = Servers!.Capture(expect.Table).Rows;
        if (received.Count > 0)
        {
            Require(expect, columns, received.SelectMany(r => r.Keys).Distinct(StringComparer.Ordinal).ToList());
        }

        return received.Select(r => columns.Select(c => r.TryGetValue(c, out var v) ? CaptureServer.Cell(v) : null).ToArray()).ToList();
    }

    /// <summary>The ClickHouse the recipe's sinks write to: its <c>${CLICKHOUSE_URL}</c>, as the shipped recipes name it.</summary>
    public static Uri ClickHouseUrl() => new(Environment.GetEnvironmentVariable("CLICKHOUSE_URL") is { Length: > 0 } url ? url : "http://127.0.0.1:8123");

    private void Require(CaseExpectation expect, IReadOnlyList<string> columns, IReadOnlyList<string> present)
    {
        var absent = columns.Where(c => !present.Contains(c, StringComparer.Ordinal)).ToList();
        if (absent.Count > 0)
        {
            throw new FixtureException(caseFile, expect.Line, $"{expect.Describe} has no column {string.Join(", ", absent.Select(a => $"'{a}'"))} (its columns: {string.Join(", ", present)})");
        }
    }

    private static (string Schema, string Name) Split(string qualified)
    {
        var dot = qualified.IndexOf('.', StringComparison.Ordinal);
        return (qualified[..dot], qualified[(dot + 1)..]);
    }

    private static string Quote(string name) => string.Join(".", name.Split('.').Select(part => "\"" + part.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
}
