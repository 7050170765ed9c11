using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// A mirror sink under the chaos test: its entry in the recipe's <c>sinks:</c>, and how to read a mirrored table back
/// (every column, values made <see cref="MirrorRows.Canonical"/> so that a row reads the same from any store).
/// </summary>
/// <param name="SinkYaml">The sink's list item, indented for <c>sinks:</c>, given the test's unique id.</param>
/// <param name="ReadAsync">A table's rows (data folder, test id, table, columns).</param>
internal sealed record MirrorTarget(string Name, Func<string, string> SinkYaml, Func<string, string, string, string[], Task<List<string>>> ReadAsync)
{
    public override string ToString() => Name;
}

/// <summary>The mirror sinks the chaos test runs: adding a sink is one entry here.</summary>
internal static class MirrorTargets
{
    public static readonly MirrorTarget[] All =
    [
        new("lake", _ => $$"""
                  - type: lake
                    zone: mirror
                    mode: mirror
                    keys: { {{string.Join(", ", MirrorChaosWorkload.Tables.Select(t => $"{t.Table}: [{string.Join(", ", t.Key)}]"))}} }
                    compaction: { min_files: 4, interval: 1s }
            """, ReadLakeAsync),
        new("postgres", id => $$"""
                  - type: postgres
                    mode: mirror
                    schema: mirror
                    connection: '{{PostgresConnectionOptions.FromEnvironment().WithDatabase($"sluice_mirror_{id}").ConnectionString()}}'
            """, ReadPostgresAsync),
        // One clickhouse sink per table (a clickhouse sink writes one table), in a database of the test's own.
        new("clickhouse", id => string.Join('\n', MirrorChaosWorkload.Tables.Select(t => $$"""
                  - type: clickhouse
                    name: ch_{{t.Table}}
                    mode: mirror
                    url: "{{ServerSettings.ClickHouseUrl}}"
                    database: {{ClickHouseMirrorReader.Database(id)}}
                    table: {{t.Table}}
                    retry_max_delay: 500ms
            """)), (_, id, table, columns) => ClickHouseMirrorReader.ReadAsync(id, table, columns)),
    ];

    /// <summary>The postgres mirror lives in schema <c>mirror</c> of the workload's own database.</summary>
    private static async Task<List<string>> ReadPostgresAsync(string data, string id, string table, string[] columns)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionOptions.FromEnvironment().WithDatabase($"sluice_mirror_{id}").ConnectionString());
        await connection.OpenAsync();
        await using var exists = new NpgsqlCommand($"SELECT to_regclass('mirror.{table}') IS NOT NULL", connection);
        if (!(bool)(await exists.ExecuteScalarAsync())!) { return []; }
        await using var command = new NpgsqlCommand($"SELECT {string.Join(", ", columns.Select(c => $"\"{c}\""))} FROM mirror.\"{table}\"", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            var values = new object?[reader.FieldCount];
            reader.GetValues(values!);
            rows.Add(MirrorRows.Line(values));
        }
        return rows;
    }

    private static Task<List<string>> ReadLakeAsync(string data, string id, string table, string[] columns)
    {
        using var services = new EngineServices(new DataDirectory(data), TimeProvider.System, NullLoggerFactory.Instance);
        if (services.Lake.Table($"mirror.{table}") is null) { return Task.FromResult(new List<string>()); }
        var result = services.Query.Query($"SELECT {string.Join(", ", columns.Select(LakeQueryEngine.Quote))} FROM mirror.{LakeQueryEngine.Quote(table)}");
        return Task.FromResult(result.Rows.Select(r => MirrorRows.Line(r)).ToList());
    }
}

/// <summary>Rows as comparable text, whatever store they were read from.</summary>
internal static class MirrorRows
{
    public static string Line(IEnumerable<object?> values) => string.Join(" | ", values.Select(Canonical));

    /// <summary>One value as text: numbers by value (a decimal with its scale), instants as UTC to the tick, NULL as ∅.</summary>
    public static string Canonical(object? value) => value switch
    {
        null or DBNull => "∅",
        bool b => b ? "true" : "false",
        sbyte or short or int or long or byte or ushort or uint or ulong => Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => ((double)f).ToString("R", CultureInfo.InvariantCulture),
        // Every scale digit: 2.50 of a numeric(12,2) read back as 2.5 lost its scale.
        decimal m => m.ToString(CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTimeOffset o => o.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
        DateTime t => (t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : t).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
