using Shouldly;
using Sluice.Core;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>
/// A snapshot's source must name each key once (with updated_at, under the timestamp strategy): a NULL key, a NULL
/// updated_at or a duplicate stops the run with the model, the count or the key, and leaves the table as it was, on both
/// engines. On PostgreSQL one aggregate finds any of them and only then do the queries that say which run, so these
/// guard that the one-pass check misses none (docs/BENCHMARKS.md, "bench warehouse"). Under the timestamp strategy the
/// check reads only the rows that could make a version (a duplicate no newer than the current version makes none).
/// </summary>
public sealed class SnapshotSourceKeyTests
{
    private const string Check = "/*\nkind: snapshot\nunique_key: id\n*/\nSELECT id, name, city FROM raw.src WHERE day = {{ as_of }}";

    private const string Timestamped = "/*\nkind: snapshot\nstrategy: timestamp\nunique_key: id\nupdated_at: updated_at\n*/\nSELECT id, name, updated_at FROM raw.src WHERE day = {{ as_of }}";

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_key_sent_twice_stops_the_run_naming_the_key_and_leaves_the_table(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Check);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', 'Paris'), (2, 'Ben', 'Nice')) v(id, name, city)");
        await h.RunAsync();
        var before = await h.Lines("SELECT id, city, valid_from, valid_to, is_current FROM dw.dim ORDER BY id");

        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann', 'Lyon'), (2, 'Ben', 'Nice'), (2, 'Ben', 'Metz')) v(id, name, city)");
        var error = await Should.ThrowAsync<SluiceException>(() => h.RunAsync());

        error.Message.ShouldContain("dw.dim: the result has 2 rows for id = 2; unique_key (id) must identify one row");
        (await h.Lines("SELECT id, city, valid_from, valid_to, is_current FROM dw.dim ORDER BY id")).ShouldBe(before);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_null_key_stops_the_run_with_how_many_rows_have_one(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Check);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', 'Paris'), (NULL, 'Ben', 'Nice'), (NULL, 'Cy', 'Brest')) v(id, name, city)");

        var error = await Should.ThrowAsync<SluiceException>(() => h.RunAsync());

        error.Message.ShouldContain("dw.dim: 2 rows of the result have a NULL in unique_key (id)");
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Under_the_timestamp_strategy_a_null_updated_at_or_a_key_twice_at_one_time_stops_the_run(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Timestamped);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', TIMESTAMP '2024-03-01 09:00:00'), (2, 'Ben', CAST(NULL AS TIMESTAMP))) v(id, name, updated_at)");
        (await Should.ThrowAsync<SluiceException>(() => h.RunAsync())).Message
            .ShouldContain("dw.dim: 1 rows of the result have a NULL updated_at (updated_at); coalesce it in the SELECT");

        // Two rows of one key at two times are two versions; at the same time, one too many.
        h.Day("2024-03-01", """
            SELECT * FROM (VALUES (1, 'Ann', TIMESTAMP '2024-03-01 09:00:00'), (1, 'Ann B', TIMESTAMP '2024-03-01 09:00:00'),
              (2, 'Ben', TIMESTAMP '2024-03-01 10:00:00')) v(id, name, updated_at)
            """);
        (await Should.ThrowAsync<SluiceException>(() => h.RunAsync())).Message
            .ShouldContain("dw.dim: the result has 2 rows for id = 1, updated_at = 2024-03-01");
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Under_the_timestamp_strategy_only_rows_that_make_versions_are_checked(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Timestamped);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', TIMESTAMP '2024-03-01 09:00:00'), (2, 'Ben', TIMESTAMP '2024-03-01 10:00:00')) v(id, name, updated_at)");
        await h.RunAsync();
        const string query = "SELECT id, name, valid_from, valid_to, is_current FROM dw.dim ORDER BY id, valid_from";
        var before = await h.Lines(query);
        before.Length.ShouldBe(2);

        // Ben sent twice at the time of his current version: no version either way, so no error and no change.
        h.Day("2024-03-02", """
            SELECT * FROM (VALUES (1, 'Ann', TIMESTAMP '2024-03-01 09:00:00'), (2, 'Ben', TIMESTAMP '2024-03-01 10:00:00'),
              (2, 'Ben B', TIMESTAMP '2024-03-01 10:00:00')) v(id, name, updated_at)
            """);
        await h.RunAsync();
        (await h.Lines(query)).ShouldBe(before);

        // Twice at a newer time would be two versions from one instant: stopped, the table as it was.
        h.Day("2024-03-03", """
            SELECT * FROM (VALUES (1, 'Ann', TIMESTAMP '2024-03-01 09:00:00'), (2, 'Ben', TIMESTAMP '2024-03-03 10:00:00'),
              (2, 'Ben B', TIMESTAMP '2024-03-03 10:00:00')) v(id, name, updated_at)
            """);
        (await Should.ThrowAsync<SluiceException>(() => h.RunAsync())).Message
            .ShouldContain("dw.dim: the result has 2 rows for id = 2, updated_at = 2024-03-03");
        (await h.Lines(query)).ShouldBe(before);

        // A NULL updated_at of a key already in the table stops the run too (it is no older than anything).
        h.Day("2024-03-03", "SELECT * FROM (VALUES (1, 'Ann', CAST(NULL AS TIMESTAMP)), (2, 'Ben', TIMESTAMP '2024-03-01 10:00:00')) v(id, name, updated_at)");
        (await Should.ThrowAsync<SluiceException>(() => h.RunAsync())).Message
            .ShouldContain("dw.dim: 1 rows of the result have a NULL updated_at (updated_at); coalesce it in the SELECT");
        (await h.Lines(query)).ShouldBe(before);
    }
}
