using Sluice.Testing;

namespace Sluice.Tests.Testing;

public sealed class RowDiffTests
{
    [Theory]
    [InlineData("12.5", 12.50)]
    [InlineData("2024-01-01T10:00:00Z", "2024-01-01 10:00:00")]
    [InlineData("2023-12-30", "2023-12-30")]
    [InlineData("true", true)]
    [InlineData("", null)]
    public void Numbers_timestamps_booleans_and_nulls_compare_by_value(string expected, object? actual)
    {
        CellText.Canonical(expected).ShouldBe(CellText.Canonical(actual));
    }

    [Fact]
    public void Dates_compare_with_typed_values_and_text_stays_text()
    {
        CellText.Canonical("2023-12-30").ShouldBe(CellText.Canonical(new DateOnly(2023, 12, 30)));
        CellText.Canonical("2024-01-01T10:00:00Z").ShouldBe(CellText.Canonical(new DateTimeOffset(2024, 1, 1, 11, 0, 0, TimeSpan.FromHours(1))));
        CellText.Canonical("7").ShouldBe(CellText.Canonical(7L));
        CellText.Canonical("Paris").ShouldNotBe(CellText.Canonical("paris"));
        CellText.Canonical("1,234.50").ShouldBe("1,234.50");
    }

    [Fact]
    public void Order_does_not_matter_but_duplicates_count()
    {
        var expected = ExpectedRows.ReadCsv("e.csv", "k,v\na,1\nb,2\nb,2\n");

        RowDiff.Compare(expected, ["k", "v"], [["b", 2L], ["a", 1L], ["b", 2L]], []).Passed.ShouldBeTrue();
        var diff = RowDiff.Compare(expected, ["k", "v"], [["b", 2L], ["a", 1L]], []);
        diff.Passed.ShouldBeFalse();
        diff.Missing.Single().Line.ShouldBe(4);
    }

    [Fact]
    public void Rows_left_over_are_paired_by_key_and_shown_as_changed_cells()
    {
        var expected = ExpectedRows.ReadCsv("e.csv", "id,city,amount\n1,Lyon,10\n2,Paris,20\n3,Nice,30\n");

        var diff = RowDiff.Compare(expected, ["id", "city", "amount"], [["1", "Lyon", 10m], ["2", "Paris", 25m], ["9", "Lille", 1m]], ["id"]);

        diff.Changed.Single().Line.ShouldBe(3);
        diff.Changed.Single().Columns.ShouldBe(["amount"]);
        diff.Missing.Single().Line.ShouldBe(4);
        diff.Unexpected.Single().Cells["id"].ShouldBe("9");
        var text = diff.Describe("e.csv", ["id"], "");
        text.ShouldContain("changed e.csv:3 (id=2): amount expected 20, actual 25");
        text.ShouldContain("missing e.csv:4: id=3, city=Nice, amount=30");
        text.ShouldContain("unexpected: id=9, city=Lille, amount=1");
    }

    [Fact]
    public void Without_a_key_a_row_sharing_most_cells_is_the_changed_one()
    {
        var expected = ExpectedRows.ReadCsv("e.csv", "a,b,c\nx,y,z\n");

        var diff = RowDiff.Compare(expected, ["a", "b", "c"], [["q", "q", "q"], ["x", "y", "Z"]], []);

        diff.Changed.Single().Columns.ShouldBe(["c"]);
        diff.Unexpected.Single().Cells["a"].ShouldBe("q");
    }
}
