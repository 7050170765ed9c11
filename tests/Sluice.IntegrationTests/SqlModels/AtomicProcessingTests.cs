using Shouldly;
using Sluice.Core;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>A processing (rewind, then replay) is published at once: a model failing after the rewind hides no data (issue 19).</summary>
public sealed class AtomicProcessingTests
{
    private const string Dim = "/*\nkind: snapshot\nunique_key: id\nhard_deletes: invalidate\n*/\nSELECT id, name FROM raw.src WHERE day = {{ as_of }}";
    private static string Daily(string label) => $"/*\nkind: incremental\npartition_by: day\n*/\nSELECT day, id, {label} AS label FROM raw.src WHERE day = {{{{ as_of }}}}";

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_model_failing_after_the_rewind_leaves_every_table_exactly_as_it_was(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.dim", Dim);
        h.Model("dw.zz_daily", Daily("name"));
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Annie'), (2, 'Ben')) v(id, name)");
        h.Day("2024-03-03", "SELECT * FROM (VALUES (1, 'Annie')) v(id, name)");
        await h.RunAsync();
        const string dim = "SELECT id, name, valid_from, valid_to, is_current FROM dw.dim ORDER BY id, valid_from";
        const string daily = "SELECT day, id, label FROM dw.zz_daily ORDER BY day, id";
        var dimBefore = await h.Lines(dim);
        var dailyBefore = await h.Lines(daily);
        dimBefore.Length.ShouldBe(3);
        dailyBefore.Length.ShouldBe(5);

        // A corrected first day rewinds both models to before it; the second one's SQL is now broken.
        h.Model("dw.zz_daily", Daily("nmae"));
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Benjamin')) v(id, name)");
        var error = await Should.ThrowAsync<SluiceException>(() => h.RunAsync());
        error.Message.ShouldContain("dw.zz_daily");
        error.Message.ShouldContain("nmae");

        // dw.dim ran (rewound and replayed the first day) before dw.zz_daily failed: neither shows any of it.
        (await h.Lines(dim)).ShouldBe(dimBefore);
        (await h.Lines(daily)).ShouldBe(dailyBefore);

        // Repaired, the next run processes the corrected day and everything after it.
        h.Model("dw.zz_daily", Daily("name"));
        await h.RunAsync();
        (await h.Lines(dim)).ShouldBe([
            "1|Ann|2024-03-01|2024-03-02|false", "1|Annie|2024-03-02|NULL|true",
            "2|Benjamin|2024-03-01|2024-03-02|false", "2|Ben|2024-03-02|2024-03-03|false",
        ]);
        (await h.Lines(daily)).Length.ShouldBe(5);
    }
}
