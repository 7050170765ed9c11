using Sluice.Testing;

namespace Sluice.Tests.Testing;

public sealed class ExpectedRowsTests
{
    [Fact]
    public void Csv_cells_may_be_quoted_across_lines_and_rows_keep_the_line_they_start_on()
    {
        var table = ExpectedRows.ReadCsv("e.csv", "id,name,note\n1,\"Dupont, Claire\",\"two\nlines\"\n2,Bob,\n\n3,\"say \"\"hi\"\"\",x\n");

        table.Columns.ShouldBe(["id", "name", "note"]);
        table.Rows.Select(r => r.Line).ShouldBe([2, 4, 6]);
        table.Rows[0].Cells["name"].ShouldBe("Dupont, Claire");
        table.Rows[0].Cells["note"].ShouldBe("two\nlines");
        table.Rows[1].Cells["note"].ShouldBeNull();
        table.Rows[2].Cells["name"].ShouldBe("say \"hi\"");
    }

    [Theory]
    [InlineData("a,b\n1,2\n3\n", "e.csv:3: 1 cell(s), but the header has 2 (a,b)")]
    [InlineData("a,b\n1,\"open\n2,3\n", "e.csv:2: a quoted cell is never closed")]
    [InlineData("a,b\n1,x\"y\n", "e.csv:2: a quote inside unquoted cell 2")]
    [InlineData("a,a\n1,2\n", "e.csv:1: the header names column 'a' twice")]
    [InlineData("", "e.csv:1: expected a header line")]
    public void A_malformed_csv_names_its_file_and_line(string text, string message)
    {
        Should.Throw<FixtureException>(() => ExpectedRows.ReadCsv("e.csv", text)).Message.ShouldStartWith(message);
    }

    [Fact]
    public void Jsonl_rows_are_objects_and_a_key_left_out_is_null()
    {
        var table = ExpectedRows.ReadJsonl("e.jsonl", ["{\"id\": 1, \"name\": \"a\"}", "", "{\"id\": 2, \"extra\": true}"]);

        table.Columns.ShouldBe(["id", "name", "extra"]);
        table.Rows[1].Line.ShouldBe(3);
        table.Rows[1].Cells["name"].ShouldBeNull();
        table.Rows[1].Cells["extra"].ShouldBe("true");
        Should.Throw<FixtureException>(() => ExpectedRows.ReadJsonl("e.jsonl", ["{}", "[1]"])).Message.ShouldStartWith("e.jsonl:2: expected a JSON object");
        Should.Throw<FixtureException>(() => ExpectedRows.ReadJsonl("e.jsonl", ["{\"a\": "])).Message.ShouldStartWith("e.jsonl:1: not JSON");
    }
}
