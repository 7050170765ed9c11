using Sluice.Core.DeadLetters;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// Values arrive exactly as Postgres holds them: exact numerics (38 digits, 50+ digits, NaN), domains, and dates and
/// times .NET cannot hold (infinity, years after 9999, BC), read by the snapshot and by the stream, into the lake,
/// a Postgres mirror and ClickHouse. Each value arrives exactly or its row is dead-lettered with the reason; none is NULL.
/// </summary>
public sealed class CdcValueFidelityTests
{
    private const string Rows = """
        INSERT INTO typed (id, n38, big, dn, dt, d, ts, tz, tags) VALUES
          ({0} + 1, 12345678901234567890.123456789, 12345678901234567890123456789012345678901234.5678901234, 1.5,
             '2026-01-08 14:21:52.123456+00', '2026-01-08', '2026-01-08 14:21:52', '2026-01-08 14:21:52+00', '10.0.0.1/8'),
          ({0} + 2, -0.000000001, 'NaN', -99999999999999999999999999999.999999999, NULL, NULL, NULL, NULL, NULL),
          ({0} + 3, NULL, NULL, NULL, '0044-03-15 12:00:00+00 BC', 'infinity', '-infinity', '10000-01-01 00:00:00+00', NULL),
          ({0} + 4, NULL, NULL, NULL, '-infinity', '0044-03-15 BC', '10000-06-01 12:00:00', 'infinity', NULL),
          ({0} + 5, 'NaN', NULL, 'NaN', NULL, NULL, NULL, NULL, NULL),
          ({0} + 6, NULL, NULL, NULL, '0044-03-15 12:00:00.5+00 BC', '0044-03-15 BC', '10000-06-01 12:00:00', '10000-01-01 00:00:00+00', NULL)
        """;

    [Fact]
    public async Task Exact_numerics_domains_and_infinite_or_far_dates_reach_every_sink_exactly_or_are_dead_lettered_with_the_reason()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        await scenario.ExecuteAsync("""
            CREATE DOMAIN exact38 AS numeric(38,9);
            CREATE DOMAIN exact38_again AS exact38;
            CREATE DOMAIN moment AS timestamptz;
            CREATE TABLE typed (id int PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00',
              n38 numeric(38,9), big numeric, dn exact38_again, dt moment, d date, ts timestamp, tz timestamptz, tags inet);
            """);
        await scenario.ExecuteAsync(Rows.Replace("{0}", "0", StringComparison.Ordinal));
        var yaml = Recipe.Replace("{DB}", scenario.Database, StringComparison.Ordinal).Replace("{SLOT}", scenario.Slot, StringComparison.Ordinal)
            .Replace("{CH}", scenario.ClickHouseDb, StringComparison.Ordinal).Replace("{CHURL}", scenario.ClickHouseUrl, StringComparison.Ordinal)
            .Replace("{PG}", scenario.Pg.ConnectionString("sluice-mirror").Replace("'", "''", StringComparison.Ordinal), StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(scenario.RecipeFolder, "recipe.yaml"), yaml);

        using var engine = new Engine();
        await using (var host = new RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            await host.RunOnceAsync(CancellationToken.None); // ids 1-5: the slot's snapshot
        }

        await scenario.ExecuteAsync(Rows.Replace("{0}", "10", StringComparison.Ordinal));
        await using (var host = new RecipeHost(scenario.LoadRecipe(), engine.Services))
        {
            await host.RunOnceAsync(CancellationToken.None); // ids 11-15: the stream
        }

        // Postgres holds every value: the mirror equals the source on the text form, both ways.
        const string Source = "SELECT id, n38::text, big::text, dn::text, dt::text, d::text, (ts AT TIME ZONE 'UTC')::text, tz::text, tags::text FROM public.typed";
        const string Mirror = "SELECT id, n38::text, big::text, dn::text, dt::text, d::text, ts::text, tz::text, tags::text FROM mirror.typed";
        (await scenario.ScalarAsync<long>("SELECT count(*) FROM mirror.typed")).ShouldBe(12);
        (await scenario.ScalarAsync<long>($"SELECT count(*) FROM ({Source} EXCEPT {Mirror}) x")).ShouldBe(0);
        (await scenario.ScalarAsync<long>($"SELECT count(*) FROM ({Mirror} EXCEPT {Source}) x")).ShouldBe(0);
        (await scenario.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'mirror.typed'::regclass AND attname = 'dn'")).ShouldBe("numeric(38,9)");

        // The lake: DECIMAL(38,9) and the unbounded numeric as text, every digit; NaN in a DECIMAL and infinity dead-lettered.
        var query = new LakeQueryEngine(engine.Services.Lake);
        var lake = query.Query("SELECT id, CAST(n38 AS VARCHAR), big, CAST(dn AS VARCHAR), typeof(n38) FROM cdc.typed WHERE id % 10 IN (1, 2) ORDER BY id");
        lake.Rows.Select(r => string.Join('|', r.Select(LakeQueryEngine.FormatValue))).ShouldBe([
            "1|12345678901234567890.123456789|12345678901234567890123456789012345678901234.5678901234|1.500000000|DECIMAL(38,9)",
            "2|-0.000000001|NaN|-99999999999999999999999999999.999999999|DECIMAL(38,9)",
            "11|12345678901234567890.123456789|12345678901234567890123456789012345678901234.5678901234|1.500000000|DECIMAL(38,9)",
            "12|-0.000000001|NaN|-99999999999999999999999999999.999999999|DECIMAL(38,9)"]);
        // Years after 9999 and BC are instants Parquet and DuckDB hold: the same milliseconds and days as Postgres counts.
        var far = query.Query("SELECT id, epoch_ms(dt), d - DATE '1970-01-01', epoch_ms(ts), epoch_ms(tz) FROM cdc.typed WHERE id % 10 = 6 ORDER BY id")
            .Rows.Select(r => string.Join('|', r.Select(LakeQueryEngine.FormatValue)));
        string.Join(',', far).ShouldBe(await scenario.ScalarAsync<string>(
            "SELECT string_agg(concat_ws('|', id, floor(extract(epoch FROM dt) * 1000)::bigint, d - date '1970-01-01', " +
            "floor(extract(epoch FROM ts) * 1000)::bigint, floor(extract(epoch FROM tz) * 1000)::bigint), ',' ORDER BY id) FROM typed WHERE id % 10 = 6"));
        AssertLetters(engine, "lake:cdc", [3, 4, 5, 13, 14, 15], ["typed.d: infinity cannot be stored by lake:cdc: a Parquet DATE has no infinity", "typed.dt: -infinity", "a Parquet TIMESTAMP has no infinity", "typed.n38: NaN", "a Parquet DECIMAL(38,9) has no NaN"]);

        // ClickHouse: Decimal(38, 9) and String, exact; what its DateTime, Date and Decimal cannot hold dead-lettered.
        // (The values as TabSeparated writes them: 18.16's toString of a Decimal128 sometimes prints NULs among the digits.)
        (await scenario.ClickHouseAsync($"SELECT id, n38, big, dn, toTypeName(n38) FROM {scenario.ClickHouseDb}.typed FINAL ORDER BY id FORMAT TabSeparated"))
            .Replace("\t", "|", StringComparison.Ordinal).Split('\n').ShouldBe([
                "1|12345678901234567890.123456789|12345678901234567890123456789012345678901234.5678901234|1.500000000|Nullable(Decimal(38, 9))",
                "2|-0.000000001|NaN|-99999999999999999999999999999.999999999|Nullable(Decimal(38, 9))",
                "11|12345678901234567890.123456789|12345678901234567890123456789012345678901234.5678901234|1.500000000|Nullable(Decimal(38, 9))",
                "12|-0.000000001|NaN|-99999999999999999999999999999.999999999|Nullable(Decimal(38, 9))"]);
        AssertLetters(engine, "clickhouse:clickhouse", [3, 4, 5, 6, 13, 14, 15, 16], ["typed row id=3", "typed.dt: -infinity", "a ClickHouse DateTime holds 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC", "Nullable(Decimal(38, 9)) has no NaN"]);
    }

    private static void AssertLetters(Engine engine, string source, int[] ids, string[] texts)
    {
        var letters = engine.Services.DeadLetters.List(source, DeadLetterStore.Pending);
        letters.Select(l => System.Text.Json.JsonDocument.Parse(l.Payload!).RootElement.GetProperty("id").GetInt32()).Order().ShouldBe(ids);
        var all = string.Join('\n', letters.Select(l => $"{l.Position} {l.Reason}"));
        foreach (var text in texts) { all.ShouldContain(text); }
        letters.ShouldAllBe(l => l.Reason.StartsWith("typed.", StringComparison.Ordinal));
    }

    private const string Recipe = """
        name: engagement-cdc
        pipelines:
          cdc:
            source:
              type: postgres_cdc
              connection: { database: "{DB}" }
              publication: {SLOT}
              slot: {SLOT}
              tables:
                typed: { on_update: emit, on_delete: emit }
              snapshot: true
              status_interval: 200ms
              heartbeat: 1s
            sinks:
              - type: lake
                zone: cdc
                partition_by: created_at
                position_column: _lsn
              - type: postgres
                connection: '{PG}'
                schema: mirror
                keys: { typed: [id] }
              - type: clickhouse
                name: clickhouse
                url: "{CHURL}"
                database: {CH}
                table: typed
                order_by: [id]
                version: _lsn
                insert_linger: 10ms
        """;
}
