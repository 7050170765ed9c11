using System.Text;
using Sluice.Connectors.Files;

namespace Sluice.IntegrationTests.SalesWarehouse;

/// <summary>The bad input, each case asserted on both engines: clear errors naming file and expected header, nothing else lost.</summary>
public sealed class BadInputTests
{
    private static async Task<string[]> Lines(WarehouseHarness h, string sql) => (await h.RowsAsync(sql)).Select(r => string.Join("|", r)).ToArray();

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Bad_files_fail_with_their_reason_and_every_good_row_still_lands(string engine)
    {
        await using var h = await WarehouseHarness.CreateAsync(engine);
        // BOM, CRLF, and a quoted field holding a comma and a line break.
        h.Drop("customers_20240101.csv", "\uFEFFID,Name,City\r\n1,\"Martin, Ann\r\nJr\",lyon\r\n2,Bob,\"Saint-Denis\"\r\n");
        // Latin-1 bytes in a UTF-8 file: that row is rejected, the next one lands.
        h.Drop("customers_20240102.csv", [.. Encoding.ASCII.GetBytes("ID,Name,City\n3,Zo"), 0xEB, .. Encoding.ASCII.GetBytes(",Paris\n4,Dan,Nice\n")]);
        h.Drop("customers_20240103.csv", "Name,ID,City\nEve,5,Lyon\n");
        h.Drop("customers_20240104.csv", "5,Eve,Lyon\n6,Fay,Nice\n");
        h.Drop("sales_20240101.csv", "");
        h.Drop("sales_20240102.csv", "CustomerID,Product,SalesAmount,ShopId,TransactionDate\r\n1,\"Cup, large\",\"2,500.00\",1,02/01/2024\r\n");

        await h.RunOnceAsync();

        Directory.GetFiles(h.Processed).Select(Path.GetFileName).Order().ShouldBe(["customers_20240101.csv", "customers_20240102.csv", "sales_20240102.csv"]);
        var reordered = Rejection(h, "customers_20240103.csv");
        reordered.Reason.ShouldBe("customers_20240103.csv: the columns are reordered: expected the header 'ID,Name,City' (in this order), found 'Name,ID,City'");
        reordered.Line.ShouldBe(1);
        Rejection(h, "customers_20240104.csv").Reason.ShouldBe("customers_20240104.csv: the header line is missing: expected the header 'ID,Name,City' on line 1, found '5,Eve,Lyon'");
        Rejection(h, "sales_20240101.csv").Reason.ShouldBe("the file is empty (0 bytes)");
        var letters = h.Engine.Services.DeadLetters.List("files:sales-warehouse");
        letters.Select(l => l.Position).Order().ShouldBe(["failed/customers_20240103.csv: line 1, record 0", "failed/customers_20240104.csv: line 1, record 0", "failed/sales_20240101.csv: line 0, record 0"]);

        (await Lines(h, "SELECT customer_id, name, city FROM dw.dim_customer ORDER BY customer_id")).ShouldBe(["1|Martin, Ann Jr|Lyon", "2|Bob|Saint-Denis", "4|Dan|Nice"]);
        (await Lines(h, "SELECT \"Name\" FROM raw.customer WHERE \"ID\" = '1'")).ShouldBe(["Martin, Ann\r\nJr"]);
        (await Lines(h, "SELECT source_file, source_row, rule, column_name, raw_values FROM dw.quarantine"))
            .ShouldBe(["customers_20240102.csv|1|invalid_encoding|name|{\"ID\":\"3\",\"Name\":\"Zo\uFFFD\",\"City\":\"Paris\"}"]);
        (await Lines(h, "SELECT customer_id, sales_amount, transaction_date FROM dw.fact_sales")).ShouldBe(["1|2500.00|2024-01-02"]);
        (await Lines(h, "SELECT product_name FROM dw.dim_product")).ShouldBe(["Cup, large"]);
    }

    private static FileRejection Rejection(WarehouseHarness h, string name) =>
        FileRejection.FromJson(File.ReadAllText(Path.Combine(h.Failed, name + ".error.json")))!;
}
