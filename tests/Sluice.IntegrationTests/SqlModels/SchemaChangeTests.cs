using Shouldly;
using Sluice.Core;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>Stateful models whose SELECT gains, loses or retypes a column (issue 19, on_schema_change), on both engines.</summary>
public sealed class SchemaChangeTests
{
    private static string SnapshotModel(string columns, string options = "") =>
        $"/*\nkind: snapshot\nunique_key: id\n{options}\n*/\nSELECT {columns} FROM raw.src WHERE day = {{{{ as_of }}}}";

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_snapshot_whose_query_gains_a_column_keeps_its_history_and_versions_the_new_values(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", SnapshotModel("id, name"));
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        await h.RunAsync();

        h.Model("dw.dim", SnapshotModel("id, name, city"));
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann', 'Lyon'), (2, 'Ben', NULL)) v(id, name, city)");
        await h.RunAsync();

        // Ann's city became known: a new version; Ben's is still unknown (NULL = NULL): no change.
        (await h.Lines("SELECT id, name, city, valid_from, valid_to, is_current FROM dw.dim ORDER BY id, valid_from")).ShouldBe([
            "1|Ann|NULL|2024-03-01|2024-03-02|false",
            "1|Ann|Lyon|2024-03-02|NULL|true",
            "2|Ben|NULL|2024-03-01|NULL|true",
        ]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task An_incremental_merge_whose_query_gains_a_column_works_on_both_engines(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        const string header = "/*\nkind: incremental\nunique_key: id\nsurrogate_key: sk\n*/\n";
        h.Model("dw.merged", header + "SELECT id, name FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        await h.RunAsync();

        h.Model("dw.merged", header + "SELECT id, name, city FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (2, 'Ben', 'Nice'), (3, 'Cy', 'Metz')) v(id, name, city)");
        await h.RunAsync();

        (await h.Lines("SELECT sk, id, name, city FROM dw.merged ORDER BY id")).ShouldBe(["1|1|Ann|NULL", "2|2|Ben|Nice", "3|3|Cy|Metz"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Under_fail_a_lost_column_stops_the_run_with_the_difference_and_leaves_the_table(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", SnapshotModel("id, name, city", "on_schema_change: fail"));
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', 'Paris')) v(id, name, city)");
        await h.RunAsync();
        var before = await h.Lines("SELECT * FROM dw.dim");

        h.Model("dw.dim", SnapshotModel("id, name, CAST(id AS VARCHAR) AS code", "on_schema_change: fail"));
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann', 'Lyon')) v(id, name, city)");
        var error = await Should.ThrowAsync<SluiceException>(() => h.RunAsync());

        error.Message.ShouldContain("dw.dim");
        error.Message.ShouldContain("on_schema_change is fail");
        error.Message.ShouldContain("added code");
        error.Message.ShouldContain("removed city");
        (await h.Lines("SELECT * FROM dw.dim")).ShouldBe(before);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Append_keeps_a_lost_column_and_refuses_a_retyped_one_while_sync_follows_the_query(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", SnapshotModel("id, name, city, score"));
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann', 'Paris', 7)) v(id, name, city, score)");
        await h.RunAsync();

        // append_new_columns (the default): city is lost from the query, so new versions have it NULL.
        h.Model("dw.dim", SnapshotModel("id, name, score"));
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Annie', 'Paris', 7)) v(id, name, city, score)");
        await h.RunAsync();
        (await h.Lines("SELECT id, name, city, score, valid_from FROM dw.dim ORDER BY valid_from")).ShouldBe(["1|Ann|Paris|7|2024-03-01", "1|Annie|NULL|7|2024-03-02"]);

        // A retyped column is never converted under append_new_columns.
        h.Model("dw.dim", SnapshotModel("id, name, CAST(score AS VARCHAR) AS score"));
        h.Day("2024-03-03", "SELECT * FROM (VALUES (1, 'Annie', 'Paris', 8)) v(id, name, city, score)");
        var error = await Should.ThrowAsync<SluiceException>(() => h.RunAsync());
        error.Message.ShouldContain("column score is");
        error.Message.ShouldContain("sync_all_columns");

        // sync_all_columns: city dropped, score converted to text.
        h.Model("dw.dim", SnapshotModel("id, name, CAST(score AS VARCHAR) AS score", "on_schema_change: sync_all_columns"));
        await h.RunAsync();
        (await h.Lines("SELECT id, name, score, valid_from, is_current FROM dw.dim ORDER BY valid_from")).ShouldBe([
            "1|Ann|7|2024-03-01|false", "1|Annie|7|2024-03-02|false", "1|Annie|8|2024-03-03|true",
        ]);
        (await h.Lines("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'dw' AND table_name = 'dim' AND column_name = 'city'")).ShouldBe(["0"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_partitioned_incremental_under_sync_drops_a_lost_column_from_every_day(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        const string header = "/*\nkind: incremental\npartition_by: day\non_schema_change: sync_all_columns\n*/\n";
        h.Model("dw.daily", header + "SELECT day, id, name FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name)");
        await h.RunAsync();

        h.Model("dw.daily", header + "SELECT day, id FROM raw.src WHERE day = {{ as_of }}");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (2, 'Ben')) v(id, name)");
        await h.RunAsync();

        (await h.Lines("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'dw' AND table_name = 'daily' AND column_name = 'name'")).ShouldBe(["0"]);
        (await h.Lines("SELECT day, id FROM dw.daily ORDER BY day")).ShouldBe(["2024-03-01|1", "2024-03-02|2"]);
    }
}
