using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;
using static Sluice.IntegrationTests.Pipeline.FilesToSinksTests;

namespace Sluice.IntegrationTests.Examples;

/// <summary>recipes/examples/csv-to-postgres-and-lake, run by <c>./sluice run --once</c> against the real Postgres.</summary>
public sealed class CsvToPostgresAndLakeTests
{
    [Fact]
    public async Task Csv_drops_land_in_postgres_upserted_by_key_and_in_the_lake_and_a_bad_row_is_dead_lettered_with_file_and_line()
    {
        await using var world = await ExampleWorld.CreateAsync("csv-to-postgres-and-lake");
        var incoming = Directory.CreateDirectory(Path.Combine(world.DataRoot, "orders-drop", "incoming")).FullName;
        await File.WriteAllTextAsync(Path.Combine(incoming, "orders_0301.csv"), """
            order_id,ordered_at,customer,amount
            o-1,2026-03-01T09:00:00Z,ann,12.5
            o-2,2026-03-01T10:30:00Z,bob,lots
            o-3,2026-03-02T08:15:00Z,cy,7

            """);
        await world.RunOnceAsync();
        // A second drop corrects o-1 and adds o-4: Postgres keeps one row per order, the lake every row.
        await File.WriteAllTextAsync(Path.Combine(incoming, "orders_0302.csv"), """
            order_id,ordered_at,customer,amount
            o-1,2026-03-01T09:00:00Z,ann,13.5
            o-4,2026-03-02T12:00:00Z,di,40

            """);
        await world.RunOnceAsync();

        (await world.RowsAsync("SELECT order_id, to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), customer, amount FROM shop.orders ORDER BY order_id")).ShouldBe([
            "o-1|2026-03-01 09:00|ann|13.5",
            "o-3|2026-03-02 08:15|cy|7",
            "o-4|2026-03-02 12:00|di|40",
        ]);
        (await Query(world.DataRoot, "SELECT order_id, strftime(ordered_at, '%Y-%m-%d %H:%M') AS at, customer, amount FROM shop.orders ORDER BY order_id, amount")).ShouldBe("""
            order_id,at,customer,amount
            o-1,2026-03-01 09:00,ann,12.5
            o-1,2026-03-01 09:00,ann,13.5
            o-3,2026-03-02 08:15,cy,7
            o-4,2026-03-02 12:00,di,40

            """.ReplaceLineEndings("\n"));
        Meta(world.DataRoot, "SELECT source || ' | ' || position || ' | ' || reason FROM dead_letters").ShouldBe([
            "files:csv-to-postgres-and-lake/orders | orders_0301.csv: line 3, record 2, field 'amount' | wrong type: expected double, got 'lots'",
        ]);
    }
}
