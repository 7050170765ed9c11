using Shouldly;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>
/// Snapshot options as dbt has them (issue 19): the timestamp strategy with versions finer than a day, check_cols,
/// hard_deletes, valid_to_current and the meta columns, on both engines, with the results dbt gives for the same inputs.
/// </summary>
public sealed class SnapshotStrategyTests
{
    private const string Timestamped = """
        /*
        kind: snapshot
        strategy: timestamp
        unique_key: id
        updated_at: updated_at
        surrogate_key: sk
        */
        SELECT id, name, city, updated_at FROM raw.src WHERE day = {{ as_of }}
        """;

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Timestamp_strategy_versions_follow_updated_at_even_twice_a_day(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Timestamped);
        h.Day("2024-03-01", """
            SELECT * FROM (VALUES
              (1, 'Ann', 'Paris', TIMESTAMP '2024-03-01 09:00:00'),
              (2, 'Ben', 'Nice', TIMESTAMP '2024-02-20 08:00:00')) v(id, name, city, updated_at)
            """);
        // Ann moved twice on the 2nd (two rows of one key); Ben's name changed but his updated_at did not move.
        h.Day("2024-03-02", """
            SELECT * FROM (VALUES
              (1, 'Ann', 'Lyon', TIMESTAMP '2024-03-02 09:00:00'),
              (1, 'Ann', 'Metz', TIMESTAMP '2024-03-02 15:30:00'),
              (2, 'Benny', 'Nice', TIMESTAMP '2024-02-20 08:00:00')) v(id, name, city, updated_at)
            """);
        await h.RunAsync();

        string[] expected =
        [
            "1|1|Ann|Paris|2024-03-01 09:00:00|2024-03-02 09:00:00|false",
            "3|1|Ann|Lyon|2024-03-02 09:00:00|2024-03-02 15:30:00|false",
            "4|1|Ann|Metz|2024-03-02 15:30:00|NULL|true",
            "2|2|Ben|Nice|2024-02-20 08:00:00|NULL|true",
        ];
        const string query = "SELECT sk, id, name, city, valid_from, valid_to, is_current FROM dw.dim ORDER BY id, valid_from";
        (await h.Lines(query)).ShouldBe(expected);

        // The same day again changes nothing (updated_at did not move).
        await h.RunAsync("2024-03-02");
        (await h.Lines(query)).ShouldBe(expected);

        // A corrected first day is put in its place: the model is rebuilt from its first day.
        h.Day("2024-03-01", """
            SELECT * FROM (VALUES
              (1, 'Ann', 'Paris', TIMESTAMP '2024-03-01 09:00:00'),
              (2, 'Ben', 'Nice', TIMESTAMP '2024-02-20 08:00:00'),
              (3, 'Cy', 'Brest', TIMESTAMP '2024-02-28 12:00:00')) v(id, name, city, updated_at)
            """);
        await h.RunAsync();
        (await h.Lines(query)).ShouldBe([
            "1|1|Ann|Paris|2024-03-01 09:00:00|2024-03-02 09:00:00|false",
            "4|1|Ann|Lyon|2024-03-02 09:00:00|2024-03-02 15:30:00|false",
            "5|1|Ann|Metz|2024-03-02 15:30:00|NULL|true",
            "2|2|Ben|Nice|2024-02-20 08:00:00|NULL|true",
            "3|3|Cy|Brest|2024-02-28 12:00:00|NULL|true",
        ]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Check_cols_lists_the_columns_whose_change_makes_a_version(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.by_city", "/*\nkind: snapshot\nunique_key: id\ncheck_cols: [city]\n*/\nSELECT id, name, city FROM raw.src WHERE day = {{ as_of }}");
        h.Model("dw.by_all", "/*\nkind: snapshot\nunique_key: id\ncheck_cols: all\n*/\nSELECT id, name, city FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', 'Paris')) v(id, name, city)");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Annie', 'Paris')) v(id, name, city)");
        h.Day("2024-03-03", "SELECT * FROM (VALUES (1, 'Annie', 'Lyon')) v(id, name, city)");
        await h.RunAsync();

        // The row keeps the values of the day its version opened: a name change alone is no version of by_city.
        (await h.Lines("SELECT name, city, valid_from, valid_to FROM dw.by_city ORDER BY valid_from")).ShouldBe(["Ann|Paris|2024-03-01|2024-03-03", "Annie|Lyon|2024-03-03|NULL"]);
        (await h.Lines("SELECT name, city, valid_from FROM dw.by_all ORDER BY valid_from")).ShouldBe(["Ann|Paris|2024-03-01", "Annie|Paris|2024-03-02", "Annie|Lyon|2024-03-03"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task New_record_marks_a_deletion_and_a_return_with_meta_columns_and_a_far_future_end(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", """
            /*
            kind: snapshot
            unique_key: id
            hard_deletes: new_record
            valid_to_current: 9999-12-31
            scd_id: scd_id
            updated_at_column: snapshot_updated_at
            is_deleted: deleted
            */
            SELECT id, name FROM raw.src WHERE day = {{ as_of }}
            """);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name)");
        h.Day("2024-03-03", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name)");
        h.Day("2024-03-04", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        await h.RunAsync();

        const string query = "SELECT id, name, valid_from, valid_to, is_current, deleted, snapshot_updated_at FROM dw.dim ORDER BY id, valid_from";
        string[] expected =
        [
            "1|Ann|2024-03-01|9999-12-31|true|false|2024-03-01",
            "2|Ben|2024-03-01|2024-03-02|false|false|2024-03-01",
            "2|Ben|2024-03-02|2024-03-04|false|true|2024-03-02",
            "2|Ben|2024-03-04|9999-12-31|true|false|2024-03-04",
        ];
        (await h.Lines(query)).ShouldBe(expected);
        // scd_id: one hash per version, of the key and valid_from, the same on both engines.
        (await h.Lines("SELECT count(DISTINCT scd_id) FROM dw.dim")).ShouldBe(["4"]);
        (await h.Lines("SELECT scd_id FROM dw.dim WHERE id = 1")).ShouldBe(["dc9dc34a5f91f5aafc7ef3eccf85111a"]);

        // Reprocessing the deletion's day rewinds to before it and replays to the same table.
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name) WHERE id > 0");
        await h.RunAsync();
        (await h.Lines(query)).ShouldBe(expected);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Invalidate_closes_a_missing_key_and_absent_close_still_means_it(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.new_name", "/*\nkind: snapshot\nunique_key: id\nhard_deletes: invalidate\n*/\nSELECT id, name FROM raw.src WHERE day = {{ as_of }}");
        h.Model("dw.old_name", "/*\nkind: snapshot\nunique_key: id\nabsent: close\n*/\nSELECT id, name FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name)");
        await h.RunAsync();

        string[] expected = ["1|2024-03-01|NULL|true", "2|2024-03-01|2024-03-02|false"];
        (await h.Lines("SELECT id, valid_from, valid_to, is_current FROM dw.new_name ORDER BY id")).ShouldBe(expected);
        (await h.Lines("SELECT id, valid_from, valid_to, is_current FROM dw.old_name ORDER BY id")).ShouldBe(expected);
    }
}
