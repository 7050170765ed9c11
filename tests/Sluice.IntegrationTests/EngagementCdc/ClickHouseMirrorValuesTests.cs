using Npgsql;
using Sluice.Core;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// A ClickHouse mirror keeps every value exactly as Postgres holds it (docs/CDC.md, "ClickHouse mirror columns"):
/// microseconds of <c>timestamp</c> and <c>timestamptz</c>, <c>infinity</c>, years after 9999 and BC, dates before
/// 1970, numerics of any size and scale (<c>NaN</c> of an unbounded one), uuid, json, arrays, time, booleans. Rows read
/// by the initial snapshot and rows streamed later are compared value by value, from the text each side prints.
/// </summary>
public sealed class ClickHouseMirrorValuesTests
{
    private const string Schema = """
        CREATE TABLE typed (id int PRIMARY KEY, ts timestamptz, tsn timestamp, d date, t time, n numeric, big numeric(50, 10),
            dec numeric(38, 9), small numeric(5, 2), u uuid, j jsonb, arr int[], tags text[], b boolean);
        """;

    /// <summary>Values at every edge; <c>{0}</c> is the row id.</summary>
    private static readonly string[] Rows =
    [
        "({0}, '2026-01-08 14:21:52.123456+00', '2026-01-08 14:21:52.654321', '2026-01-08', '14:21:52.123456', 12345678901234567890.123456789, 1234567890123456789012345678901234567890.0123456789, " +
            "-99999999999999999999999999999.999999999, 2.50, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"a\": [1, 2.50, \"x\"], \"b\": null}}', '{{1,2,3}}', '{{\"a b\",c}}', true)",
        "({0}, 'infinity', '-infinity', 'infinity', '00:00:00', 'NaN', 0.0000000001, 0.000000001, -0.01, NULL, '[]', '{{}}', '{{NULL}}', false)",
        "({0}, '-infinity', 'infinity', '-infinity', '23:59:59.999999', -0.000, -1, 1, 999.99, '00000000-0000-0000-0000-000000000000', '\"text\"', '{{-2147483648}}', '{{}}', NULL)",
        "({0}, '10000-06-01 12:00:00.000001+00', '0044-03-15 12:00:00.5 BC', '1900-02-28', NULL, 1e-20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "({0}, '1969-12-31 23:59:59.999999+00', '1970-01-01 00:00:00.000001', '0044-03-15 BC', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "({0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    ];

    /// <summary>
    /// Each column as the mirror's column map says ClickHouse holds it, computed by Postgres: a timestamp's microseconds
    /// and a date's days since 1970 (infinities: the Int64/Int32 ends), a boolean as 0/1, the rest as Postgres's text.
    /// </summary>
    private const string Expected = """
        SELECT concat_ws(E'\t', id,
          coalesce(CASE WHEN ts = 'infinity' THEN '9223372036854775807' WHEN ts = '-infinity' THEN '-9223372036854775808' ELSE (extract(epoch FROM ts) * 1000000)::bigint::text END, '\N'),
          coalesce(CASE WHEN tsn = 'infinity' THEN '9223372036854775807' WHEN tsn = '-infinity' THEN '-9223372036854775808' ELSE (extract(epoch FROM tsn) * 1000000)::bigint::text END, '\N'),
          coalesce(CASE WHEN d = 'infinity' THEN '2147483647' WHEN d = '-infinity' THEN '-2147483648' ELSE (d - date '1970-01-01')::text END, '\N'),
          coalesce(t::text, '\N'), coalesce(n::text, '\N'), coalesce(big::text, '\N'), coalesce(dec::text, '\N'), coalesce(small::text, '\N'),
          coalesce(u::text, '\N'), coalesce(j::text, '\N'), coalesce(arr::text, '\N'), coalesce(tags::text, '\N'), coalesce(b::int::text, '\N'))
        FROM typed ORDER BY id
        """;

    [Fact]
    public async Task A_clickhouse_mirror_holds_every_value_exactly_as_postgres_from_the_snapshot_and_the_stream()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        await scenario.ExecuteAsync(Schema);
        await scenario.ExecuteAsync("INSERT INTO typed VALUES " + string.Join(", ", Rows.Select((r, i) => string.Format(System.Globalization.CultureInfo.InvariantCulture, r, i + 1))));
        await File.WriteAllTextAsync(Path.Combine(scenario.RecipeFolder, "recipe.yaml"), $$"""
            name: engagement-cdc
            pipelines:
              mirror:
                source:
                  type: postgres_cdc
                  connection: { database: "{{scenario.Database}}" }
                  publication: {{scenario.Slot}}
                  slot: {{scenario.Slot}}
                  tables:
                    typed: { on_update: emit, on_delete: emit }
                  status_interval: 200ms
                  heartbeat: 1s
                sinks:
                  - type: clickhouse
                    name: ch_typed
                    mode: mirror
                    url: "{{scenario.ClickHouseUrl}}"
                    database: {{scenario.ClickHouseDb}}
                    table: typed
                    insert_linger: 0ms
                    retry_max_delay: 500ms
            """);
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await WaitForEqualAsync(scenario, engine);

        // The same values again, streamed (inserts and updates), and a delete.
        await scenario.ExecuteAsync("INSERT INTO typed VALUES " + string.Join(", ", Rows.Select((r, i) => string.Format(System.Globalization.CultureInfo.InvariantCulture, r, i + 101))));
        await scenario.ExecuteAsync("UPDATE typed SET ts = '2000-02-29 23:59:59.000001+00', d = 'infinity', b = NOT b WHERE id = 1; DELETE FROM typed WHERE id = 6;");
        await WaitForEqualAsync(scenario, engine);
        engine.Services.DeadLetters.List(null, null, 10).ShouldBeEmpty();
    }

    private static async Task WaitForEqualAsync(CdcScenario scenario, Engine engine) =>
        await CdcScenario.WaitUntilAsync(async () => await DifferenceAsync(scenario) == "", TimeSpan.FromSeconds(90),
            async () => await DifferenceAsync(scenario) + "; dead letters: " + string.Join("; ", engine.Services.DeadLetters.List(null, null, 10).Select(l => l.Reason)));

    private static async Task<string> DifferenceAsync(CdcScenario scenario)
    {
        var expected = new List<string>();
        await using (var connection = new NpgsqlConnection(scenario.Pg.ConnectionString("sluice-test")))
        {
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand(Expected.Replace("\r", "", StringComparison.Ordinal), connection);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync()) { expected.Add(reader.GetString(0)); }
        }

        string mirror;
        try
        {
            mirror = await scenario.ClickHouseAsync(
                $"SELECT id, ts, tsn, d, t, n, big, dec, small, u, j, arr, tags, b FROM `{scenario.ClickHouseDb}`.`typed_current` ORDER BY id FORMAT TabSeparated");
        }
        catch (ShouldAssertException e)
        {
            return e.Message.Split('\n')[0];
        }

        // ClickHouse writes NULL as \N, and so does the expected side.
        var actual = mirror.Length == 0 ? [] : mirror.Split('\n').ToList();
        var missing = expected.Except(actual).ToList();
        var extra = actual.Except(expected).ToList();
        return missing.Count + extra.Count == 0 ? "" : $"{missing.Count} rows missing or different (first: {missing.FirstOrDefault()}), {extra.Count} not in the source (first: {extra.FirstOrDefault()})";
    }
}
