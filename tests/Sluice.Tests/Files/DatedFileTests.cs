using Sluice.Connectors.Files;
using Sluice.Core.Schema;

namespace Sluice.Tests.Files;

public sealed class DatedFileTests
{
    private static readonly FieldSpec[] Fields = [new("ID", FieldType.String, false), new("Name", FieldType.String, false), new("City", FieldType.String, false)];

    private static FileType Type(string name, string pattern, int order) => new()
    {
        Name = name, Pattern = pattern, Format = FileFormat.Csv, Table = $"raw.{name}", EventTime = "", Fields = Fields, NameDate = "yyyyMMdd", LoadOrder = order, Lineage = true,
    };

    [Theory]
    [InlineData("sales_20240105.csv", "2024-01-05")]
    [InlineData("sales_20240105_fix.csv", "2024-01-05")]
    [InlineData("v2_sales_20241231.csv", "2024-12-31")]
    [InlineData("sales_202401051.csv", null)]
    [InlineData("sales_20241305.csv", null)]
    [InlineData("sales.csv", null)]
    public void The_date_comes_from_the_name(string name, string? expected)
    {
        var found = Type("sales", "sales_*.csv", 2).TryDateFromName(name, out var date);
        found.ShouldBe(expected is not null);
        if (expected is not null) { date.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture).ShouldBe(expected); }
    }

    [Fact]
    public void Files_load_by_date_then_customers_before_sales()
    {
        FileType[] types = [Type("sales", "sales_*.csv", 2), Type("customers", "customers_*.csv", 1)];
        var order = FilesSource.LoadOrder(["/in/sales_20240102.csv", "/in/other.txt", "/in/sales_20240101.csv", "/in/customers_20240102.csv", "/in/customers_20240101.csv"], types);
        order.ShouldBe(["/in/customers_20240101.csv", "/in/sales_20240101.csv", "/in/customers_20240102.csv", "/in/sales_20240102.csv", "/in/other.txt"]);
    }

    [Fact]
    public void A_dated_type_has_lineage_columns_and_the_file_date_partition()
    {
        var table = Type("customers", "customers_*.csv", 1).LakeTable();
        table.PartitionKey.ShouldBe("_file_date");
        table.Columns.Select(c => c.Name).ShouldBe(["ID", "Name", "City", "_file", "_row", "_loaded_at"]);
    }

    [Theory]
    [InlineData("ID,Name,City", null)]
    [InlineData("id, name ,CITY", null)]
    [InlineData("Name,ID,City", "the columns are reordered: expected the header 'ID,Name,City' (in this order), found 'Name,ID,City'")]
    [InlineData("1,Ann,Lyon", "the header line is missing: expected the header 'ID,Name,City' on line 1, found '1,Ann,Lyon'")]
    [InlineData("ID,Name", "the header does not match: expected 'ID,Name,City', found 'ID,Name'")]
    public void An_exact_header_is_checked(string header, string? problem) =>
        CsvRecordReader.HeaderProblem(header.Split(','), Fields, ',').ShouldBe(problem);

    [Fact]
    public void The_ledger_tells_the_same_content_on_another_date_apart()
    {
        var type = Type("customers", "customers_*.csv", 1);
        FileIngestor.LedgerKey("abc", type, "customers_20240101.csv").ShouldBe("abc@2024-01-01");
        FileIngestor.LedgerKey("abc", type, "customers_20240102.csv").ShouldBe("abc@2024-01-02");
        FileIngestor.LedgerKey("abc", null, "x.json").ShouldBe("abc");
    }
}
