using Shouldly;
using Sluice.Core.Schema;
using Xunit;

namespace Sluice.Tests.Transforms;

public sealed class FlattenStepTests
{
    private static ColumnBatch Events(params string?[] json) => StepHarness.Table("events",
        ("id", FieldType.String, json.Select((_, i) => (string?)$"e{i + 1}").ToArray()),
        ("_json", FieldType.String, json),
        ("_offset", FieldType.Integer, json.Select((_, i) => (long?)(i * 10)).ToArray()));

    [Fact]
    public async Task Nested_objects_become_columns_typed_by_their_values_and_arrays_become_a_child_table()
    {
        using var h = new StepHarness();
        var step = h.Create("""
            - type: flatten
              column: _json
              separator: "__"
              parent_key: [id]
            """);
        var output = await StepHarness.RunAsync(step, 10,
            Events("""{"a": {"b": 1, "c": "x"}, "n": 1, "items": [{"sku": "s1", "qty": 2}, {"sku": "s2"}]}""",
                   """{"a": {"b": 2}, "n": 1.5, "flag": true, "mixed": 1}"""));

        var events = output.Table("events")!;
        events.Schema.Fields.Select(f => f.Name).ShouldBe(["id", "a__b", "a__c", "n", "flag", "mixed", "_offset"]);
        events.Schema.Fields[1].Type.ShouldBe(FieldType.Integer);
        events.Schema.Fields[3].Type.ShouldBe(FieldType.Double);
        StepHarness.Column(events, "a__b").ShouldBe([1L, 2L]);
        StepHarness.Column(events, "flag").ShouldBe([null, true]);
        var items = output.Table("events__items")!;
        items.Schema.Fields.Select(f => f.Name).ShouldBe(["id", "_offset", "sku", "qty", "_index"]);
        StepHarness.Column(items, "id").ShouldBe(["e1", "e1"]);
        StepHarness.Column(items, "qty").ShouldBe([2L, null]);
        StepHarness.Column(items, "_index").ShouldBe([0L, 1L]);
    }

    [Fact]
    public async Task A_value_that_is_not_a_JSON_object_is_dead_lettered_and_the_others_are_flattened()
    {
        using var h = new StepHarness();
        var step = h.Create("""
            - type: flatten
              column: _json
              arrays: json
            """);
        var output = (await StepHarness.RunAsync(step, 20, Events("""{"a": [1, 2]}""", "not json", "[1]"))).Tables.Single();

        StepHarness.Column(output, "a").ShouldBe(["[1, 2]"]);
        var letters = h.Letters.List("step:r/p/steps[0]:flatten");
        letters.Select(l => l.Position).ShouldBe(["table events, offset 10", "table events, offset 20"]);
        letters[0].Reason.ShouldStartWith("flatten: column _json is not JSON");
        letters[1].Reason.ShouldBe("flatten: column _json holds a JSON array, not an object");
    }
}
