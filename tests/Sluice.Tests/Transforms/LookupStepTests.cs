using Shouldly;
using Sluice.Core.Schema;
using Xunit;

namespace Sluice.Tests.Transforms;

public sealed class LookupStepTests
{
    private const string StreamLookup = """
        - type: lookup
          key: content_id
          dimension: { table: content, load: stream }
          fields: { title: string, length_seconds: integer }
          on_miss: dead_letter
        """;

    private static ColumnBatch Content(string op, long id, string? title, long? length, string? unchanged = null) => StepHarness.Table("content",
        ("content_id", FieldType.Integer, new long?[] { id }),
        ("title", FieldType.String, new[] { title }),
        ("length_seconds", FieldType.Integer, new[] { length }),
        (ChangeEnvelope.Op, FieldType.String, new string?[] { op }),
        (ChangeEnvelope.Seq, FieldType.Integer, new long?[] { id * 100 }),
        (ChangeEnvelope.Unchanged, FieldType.String, new[] { unchanged }));

    private static ColumnBatch Events(params long?[] ids) => StepHarness.Table("events",
        ("event_id", FieldType.Integer, ids.Select((_, i) => (long?)i).ToArray()),
        ("content_id", FieldType.Integer, ids),
        ("_offset", FieldType.Integer, ids.Select((_, i) => (long?)(1000 + i)).ToArray()));

    [Fact]
    public async Task An_update_that_leaves_a_TOASTed_column_unchanged_keeps_the_cached_value_instead_of_blanking_it()
    {
        using var h = new StepHarness();
        var step = h.Create(StreamLookup);
        var output = await StepHarness.RunAsync(step, 1,
            Content("c", 7, "Long title", 60),
            Content("u", 7, null, 90, """["title"]"""),
            Events(7));

        var events = output.Table("events")!;
        events.Schema.Fields.Select(f => f.Name).ShouldBe(["event_id", "content_id", "title", "length_seconds", "_offset"]);
        StepHarness.Column(events, "title").ShouldBe(["Long title"]);
        StepHarness.Column(events, "length_seconds").ShouldBe([90L]);
    }

    [Fact]
    public async Task A_miss_is_dead_lettered_with_the_key_a_delete_forgets_the_row_and_an_unknown_row_updated_with_an_unchanged_column_is_not_cached()
    {
        using var h = new StepHarness();
        var step = h.Create(StreamLookup);
        var output = await StepHarness.RunAsync(step, 1,
            Content("c", 1, "One", 10),
            Content("c", 2, "Two", 20),
            Content("d", 2, null, null),
            Content("u", 3, null, 30, """["title"]"""),
            Events(1, 2, 3, null));

        StepHarness.Column(output.Table("events")!, "content_id").ShouldBe([1L]);
        var reasons = h.Letters.List("step:r/p/steps[0]:lookup").Select(l => l.Reason).ToList();
        reasons.ShouldBe(["lookup: no content row with content_id = 2", "lookup: no content row with content_id = 3", "lookup: content_id is NULL"]);
    }

    [Fact]
    public async Task The_cache_is_bounded_by_max_rows_least_recently_used_out_first_and_misses_kept_get_nulls()
    {
        using var h = new StepHarness();
        var step = (Sluice.Transforms.Lookup.LookupStep)h.Create("""
            - type: lookup
              key: content_id
              dimension: { table: content, load: stream }
              fields: { title: string }
              max_rows: 2
            """);
        await StepHarness.RunAsync(step, 1, Content("c", 1, "One", 1), Content("c", 2, "Two", 2), Events(1), Content("c", 3, "Three", 3));
        step.Cache.Count.ShouldBe(2);
        var events = (await StepHarness.RunAsync(step, 2, Events(1, 2, 3))).Table("events")!;
        // 1 was used after 2 was added, so 2 left when 3 came.
        StepHarness.Column(events, "title").ShouldBe(["One", null, "Three"]);
        step.Misses.ShouldBe(1);
    }

    [Fact]
    public void Options_are_checked_at_validation()
    {
        var errors = StepHarness.Parse("""
            - type: lookup
              key: content_id
              dimension: { table: content, load: stream }
              fields: [title]
              on_miss: wait
            """).Errors;
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:7: pipelines.p.steps[0].fields: lookup: with load: stream", StringComparison.Ordinal));
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:8: pipelines.p.steps[0].on_miss: lookup: wait reads the missing key again from Postgres", StringComparison.Ordinal));
    }
}
