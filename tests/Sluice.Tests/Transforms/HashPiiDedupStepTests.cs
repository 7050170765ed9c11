using System.Text;
using Microsoft.Extensions.Time.Testing;
using Shouldly;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core;
using Sluice.Core.Schema;
using Xunit;

namespace Sluice.Tests.Transforms;

public sealed class HashPiiDedupStepTests
{
    private static ColumnBatch People(long?[] offsets, string?[] emails) => StepHarness.Table("people",
        ("email", FieldType.String, emails),
        ("age", FieldType.Integer, offsets.Select(o => (long?)(o % 7)).ToArray()),
        ("_offset", FieldType.Integer, offsets));

    [Fact]
    public async Task Hash_pii_replaces_the_fields_by_the_keyed_hash_of_the_key_in_the_named_variable_and_keeps_nulls()
    {
        using var h = new StepHarness();
        Environment.SetEnvironmentVariable("SLUICE_TEST_STEP_KEY", "k-1");
        var step = h.Create("""
            - type: hash_pii
              fields: [email, age, missing]
              key_env: SLUICE_TEST_STEP_KEY
            """);
        var output = (await StepHarness.RunAsync(step, 2, People([1, 2], ["a@x.io", null]))).Tables.Single();

        var expected = new PiiHasher(Encoding.UTF8.GetBytes("k-1"));
        StepHarness.Column(output, "email").ShouldBe([expected.Hash("a@x.io"), null]);
        StepHarness.Column(output, "age").ShouldBe([expected.Hash("1"), expected.Hash("2")]);
        output.Schema.Fields[1].Type.ShouldBe(FieldType.String);
    }

    [Fact]
    public void Hash_pii_refuses_a_key_written_in_the_recipe_and_fails_at_start_when_the_key_variable_is_unset()
    {
        StepHarness.Parse("""
            - type: hash_pii
              fields: [email]
              key: secret
            """).Errors.ShouldHaveSingleItem().ShouldStartWith("recipe.yaml:6: pipelines.p.steps[0].key: hash_pii: a key is never written in the recipe");

        using var h = new StepHarness();
        Should.Throw<FatalException>(() => h.Create("""
            - type: hash_pii
              fields: [email]
              key_env: SLUICE_TEST_STEP_KEY_UNSET
            """)).Message.ShouldContain("SLUICE_TEST_STEP_KEY_UNSET");
    }

    [Fact]
    public async Task Dedup_drops_repeats_within_the_window_lets_them_through_after_it_and_a_replayed_batch_keeps_its_rows()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var h = new StepHarness(time);
        const string yaml = """
            - type: dedup
              key: [email]
              window: 1h
            """;
        var step = h.Create(yaml);
        var first = (await StepHarness.RunAsync(step, 3, People([1, 2, 3], ["a", "b", "a"]))).Tables.Single();
        StepHarness.Column(first, "_offset").ShouldBe([1L, 2L]);

        // The same batch read again after a crash: the rows it kept are kept again.
        var replay = (await StepHarness.RunAsync(step, 3, People([1, 2, 3], ["a", "b", "a"]))).Tables.Single();
        StepHarness.Column(replay, "_offset").ShouldBe([1L, 2L]);

        // A restart (a new step over the same data folder) remembers the window.
        var restarted = h.Create(yaml);
        var later = (await StepHarness.RunAsync(restarted, 5, People([4, 5], ["b", "c"]))).Tables.Single();
        StepHarness.Column(later, "_offset").ShouldBe([5L]);

        time.Advance(TimeSpan.FromMinutes(61));
        var after = (await StepHarness.RunAsync(restarted, 6, People([6], ["a"]))).Tables.Single();
        StepHarness.Column(after, "_offset").ShouldBe([6L]);
    }

    [Fact]
    public async Task Dedup_memory_is_bounded_by_max_keys_and_a_table_missing_the_key_is_dead_lettered()
    {
        using var h = new StepHarness();
        var step = (Sluice.Transforms.Dedup.DedupStep)h.Create("""
            - type: dedup
              key: [email]
              max_keys: 2
              persist: false
            """);
        await StepHarness.RunAsync(step, 3, People([1, 2, 3], ["a", "b", "c"]));
        step.Evicted.ShouldBe(1);
        // "a" left first, so its repeat passes; "c" is still held.
        StepHarness.Column((await StepHarness.RunAsync(step, 5, People([4, 5], ["a", "c"]))).Tables.Single(), "_offset").ShouldBe([4L]);

        var other = StepHarness.Table("other", ("x", FieldType.Integer, new long?[] { 1, 2 }));
        (await StepHarness.RunAsync(step, 6, other)).Tables.Single().Count.ShouldBe(0);
        h.Letters.List("step:r/p/steps[0]:dedup").Count.ShouldBe(2);
    }
}
