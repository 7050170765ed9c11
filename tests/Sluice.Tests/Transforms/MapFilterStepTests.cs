using Shouldly;
using Sluice.Core.DeadLetters;
using Sluice.Core.Schema;
using Xunit;

namespace Sluice.Tests.Transforms;

public sealed class MapFilterStepTests
{
    private static ColumnBatch Orders() => StepHarness.Table("orders",
        ("id", FieldType.Integer, new long?[] { 1, 2, 3 }),
        ("qty", FieldType.String, new string?[] { "2", "lots", "5" }),
        ("price", FieldType.Double, new double?[] { 1.5, 2.0, null }),
        ("customer_name", FieldType.String, new string?[] { "ann", "bob", "cy" }),
        ("_offset", FieldType.Integer, new long?[] { 100, 110, 120 }));

    [Fact]
    public async Task Map_renames_casts_derives_and_drops_and_a_row_whose_cast_fails_is_dead_lettered_while_the_others_go_on()
    {
        using var h = new StepHarness();
        using var step = (IDisposable)h.Create("""
            - type: map
              rename: { customer_name: customer }
              cast: { qty: integer }
              derive:
                total: "TRY_CAST(qty AS BIGINT) * price"
                shout: "upper(customer)"
              drop: [price]
            """);
        var output = (await StepHarness.RunAsync((Sluice.Core.Pipeline.IBatchStep)step, 120, Orders())).Tables.ShouldHaveSingleItem();

        output.Schema.Fields.Select(f => f.Name).ShouldBe(["id", "qty", "customer", "total", "shout", "_offset"]);
        output.Schema.Fields[1].Type.ShouldBe(FieldType.Integer);
        StepHarness.Column(output, "id").ShouldBe([1L, 3L]);
        StepHarness.Column(output, "qty").ShouldBe([2L, 5L]);
        StepHarness.Column(output, "total").ShouldBe([3.0, null]);
        StepHarness.Column(output, "shout").ShouldBe(["ANN", "CY"]);
        var letter = h.Letters.List("step:r/p/steps[0]:map").ShouldHaveSingleItem();
        letter.Position.ShouldBe("table orders, offset 110");
        letter.Reason.ShouldContain("Could not convert string 'lots' to INT64");
        letter.Payload!.ShouldContain("\"qty\":\"lots\"");
    }

    [Fact]
    public async Task Map_dead_letters_every_row_of_a_table_missing_the_column_an_expression_reads_and_a_replay_adds_no_second_letter()
    {
        using var h = new StepHarness();
        var step = h.Create("""
            - type: map
              derive: { discount: "coupon * 2" }
            """);
        await StepHarness.RunAsync(step, 120, Orders());
        var output = (await StepHarness.RunAsync(step, 120, Orders())).Tables.ShouldHaveSingleItem();

        output.Count.ShouldBe(0);
        var letters = h.Letters.List("step:r/p/steps[0]:map");
        letters.Count.ShouldBe(3);
        letters[0].Reason.ShouldContain("\"coupon\" not found");
    }

    [Fact]
    public void A_bad_expression_or_type_is_reported_at_validation_with_file_line_and_key()
    {
        var (_, errors) = StepHarness.Parse("""
            - type: map
              cast: { qty: integr }
              derive:
                total: "price * "
                two: "1, 2"
            """);
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:5: pipelines.p.steps[0].cast.qty: map: unknown type 'integr'", StringComparison.Ordinal));
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:7: pipelines.p.steps[0].derive.total: map: not a SQL expression: syntax error", StringComparison.Ordinal));
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:8: pipelines.p.steps[0].derive.two: map: not one SQL expression", StringComparison.Ordinal));

        StepHarness.Parse("""
            - type: filter
              where: "qty >"
            """).Errors.ShouldHaveSingleItem().ShouldStartWith("recipe.yaml:5: pipelines.p.steps[0].where: filter: not a SQL expression");
    }

    [Fact]
    public async Task Filter_keeps_rows_where_the_condition_is_true_drops_false_and_null_and_dead_letters_rows_it_cannot_evaluate()
    {
        using var h = new StepHarness();
        var step = h.Create("""
            - type: filter
              tables: [orders]
              where: "CAST(qty AS INTEGER) >= 2 AND price IS NOT NULL"
            """);
        var other = StepHarness.Table("other", ("x", FieldType.Integer, new long?[] { 7 }));
        var output = await StepHarness.RunAsync(step, 120, Orders(), other);

        StepHarness.Column(output.Table("orders")!, "id").ShouldBe([1L]);
        output.Table("other")!.Count.ShouldBe(1);
        var letter = h.Letters.List("step:r/p/steps[0]:filter", DeadLetterStore.Pending).ShouldHaveSingleItem();
        letter.Position.ShouldBe("table orders, offset 110");
    }
}
