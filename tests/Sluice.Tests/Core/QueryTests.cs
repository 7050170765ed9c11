using Sluice.Core;
using Sluice.Lake;
using Sluice.Cli;

namespace Sluice.Tests.Core;

public sealed class QueryTests
{
    private static readonly QueryResult Sample = new(["id", "name", "day"], [
        [1L, "plain", new DateOnly(2025, 11, 8)],
        [22L, "with, comma and \"quote\"", null],
    ]);

    [Fact]
    public void Csv_is_a_header_and_rows_only_with_rfc4180_quoting()
    {
        QueryResultFormatter.Format(Sample, QueryFormat.Csv).ShouldBe("id,name,day\n1,plain,2025-11-08\n22,\"with, comma and \"\"quote\"\"\",\n");
    }

    [Fact]
    public void Json_keeps_numbers_as_numbers_and_nulls_as_null()
    {
        var json = QueryResultFormatter.Format(Sample, QueryFormat.Json);

        using var doc = System.Text.Json.JsonDocument.Parse(json);
        doc.RootElement[1].GetProperty("id").GetInt64().ShouldBe(22);
        doc.RootElement[0].GetProperty("day").GetString().ShouldBe("2025-11-08");
        doc.RootElement[1].GetProperty("day").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
    }

    [Fact]
    public void Table_aligns_columns_and_counts_rows()
    {
        var lines = QueryResultFormatter.Format(Sample, QueryFormat.Table).Split('\n');

        lines[0].ShouldBe("id | name                    | day       ");
        lines[2].ShouldBe(" 1 | plain                   | 2025-11-08");
        lines[^2].ShouldBe("(2 rows)");
    }

    [Theory]
    [InlineData("SELECT 1")]
    [InlineData("  with x as (select 1) select * from x;")]
    [InlineData("-- a comment\nDESCRIBE raw_data.vehicle_events")]
    [InlineData("SELECT 'a;b'")]
    public void Read_only_statements_pass(string sql) => Should.NotThrow(() => LakeQueryEngine.EnsureReadOnly(sql));

    [Theory]
    [InlineData("DELETE FROM raw_data.vehicle_events", "only read-only statements")]
    [InlineData("COPY (SELECT 1) TO '/tmp/x.csv'", "only read-only statements")]
    [InlineData("SELECT 1; DROP TABLE x", "one statement at a time")]
    [InlineData("  ", "the SQL is empty")]
    public void Writes_and_multiple_statements_are_refused(string sql, string message) =>
        Should.Throw<SluiceException>(() => LakeQueryEngine.EnsureReadOnly(sql)).Message.ShouldContain(message);
}
