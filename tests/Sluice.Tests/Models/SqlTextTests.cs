using Sluice.Models;

namespace Sluice.Tests.Models;

public sealed class SqlTextTests
{
    [Fact]
    public void Names_in_comments_and_strings_are_not_dependencies()
    {
        const string sql = """
            -- reads dw.not_this
            SELECT 'staging.not_that' AS t, s.customer_id, EXTRACT(YEAR FROM s.day) AS y
            FROM staging.stg_sales s /* dw.nor_this */
            JOIN "DW"."Dim_Customer" d ON d.customer_id = s.customer_id
            """;

        SqlText.QualifiedNames(sql).ShouldContain("staging.stg_sales");
        SqlText.QualifiedNames(sql).ShouldContain("DW.Dim_Customer");
        SqlText.QualifiedNames(sql).ShouldNotContain("dw.not_this");
        SqlText.QualifiedNames(sql).ShouldNotContain("staging.not_that");
        SqlText.ReadRelations(sql).ShouldBe(["staging.stg_sales", "DW.Dim_Customer"]);
    }

    [Fact]
    public void Placeholders_are_filled_outside_strings_only()
    {
        var sql = "SELECT {{ as_of }} AS d, '{{ as_of }}' AS literal WHERE x = {{as_of}}";

        SqlText.Placeholders(sql).ShouldBe(["as_of"]);
        SqlText.Render(sql, new Dictionary<string, string> { ["as_of"] = "DATE '2024-01-02'" })
            .ShouldBe("SELECT DATE '2024-01-02' AS d, '{{ as_of }}' AS literal WHERE x = DATE '2024-01-02'");
    }

    [Theory]
    [InlineData("SELECT 1;", false)]
    [InlineData("SELECT ';' AS semicolon", false)]
    [InlineData("SELECT 1; DROP TABLE x", true)]
    public void A_second_statement_is_found(string sql, bool expected) => SqlText.HasSecondStatement(sql).ShouldBe(expected);

    [Fact]
    public void Postgres_spells_double_as_double_precision()
    {
        SqlDialect.Postgres.Translate("SELECT CAST(x AS DOUBLE), CAST(y AS DOUBLE PRECISION), 'DOUBLE' AS s, double_x FROM t")
            .ShouldBe("SELECT CAST(x AS DOUBLE PRECISION), CAST(y AS DOUBLE PRECISION), 'DOUBLE' AS s, double_x FROM t");
        SqlDialect.DuckDb.Translate("SELECT CAST(x AS DOUBLE)").ShouldBe("SELECT CAST(x AS DOUBLE)");
    }
}
