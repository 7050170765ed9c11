using System.Text;
using Sluice.Connectors.Files;
using static Sluice.Tests.Files.ReaderHarness;

namespace Sluice.Tests.Files;

public sealed class NdjsonAndCsvReaderTests
{
    private static readonly FileType Ndjson = Type("""
        name: events_nd
        pattern: "*.ndjson"
        format: ndjson
        table: raw.events
        event_time: at
        on_invalid: quarantine_rows
        fields:
          id: integer
          at: timestamp
          amount: { type: double, required: false }
          ok: { type: boolean, required: false }
        """);

    private static readonly FileType Csv = Type("""
        name: events_csv
        pattern: "*.csv"
        format: csv
        table: raw.events
        event_time: at
        on_invalid: quarantine_rows
        fields:
          id: integer
          at: timestamp
          note: { type: string, required: false }
        """);

    [Fact]
    public void Ndjson_lines_parse_independently_and_a_broken_line_is_a_bad_record_with_its_line()
    {
        var text = "{\"id\": 1, \"at\": \"2025-01-01T00:00:00Z\", \"amount\": 2.5, \"ok\": true}\r\n\r\n{\"id\": 2, \"at\": \n{\"id\": 3, \"at\": \"2025-01-02T00:00:00Z\"}";

        var (run, batches) = Read(Ndjson, text);

        run.Rows.ShouldBe(2);
        Column(batches, 0).ShouldBe(["1", "3"]);
        var issue = run.Issues.Single();
        issue.Line.ShouldBe(3);
        issue.Record.ShouldBe(2);
        issue.Message.ShouldStartWith("malformed JSON");
        run.Quarantined.Single().Payload.ShouldBe("{\"id\": 2, \"at\": ");
    }

    [Fact]
    public void Ndjson_integer_field_rejects_a_fraction()
    {
        var (run, _) = Read(Ndjson, "{\"id\": 1.5, \"at\": \"2025-01-01T00:00:00Z\"}\n");

        run.Issues.Single().Message.ShouldBe("wrong type: expected a whole number, got number 1.5");
    }

    [Fact]
    public void Csv_matches_columns_by_name_in_any_order_with_bom_quotes_and_crlf()
    {
        var text = "\uFEFFnote,AT,id,unused\r\n\"a, quoted\nnote\",2025-01-01T00:00:00Z,7,x\r\n,2025-01-02T00:00:00Z,8,y\r\n";

        var (run, batches) = Read(Csv, Encoding.UTF8.GetBytes(text));

        run.Rejected.ShouldBeFalse();
        Column(batches, 0).ShouldBe(["7", "8"]);
        Column(batches, 2).ShouldBe(["a, quoted\nnote", null]);
    }

    [Fact]
    public void Csv_without_a_required_column_fails_the_file_naming_the_expected_header()
    {
        var (run, _) = Read(Csv, "id,note\n1,x\n");

        run.Rejected.ShouldBeTrue();
        run.Fatal!.Message.ShouldBe("header is missing at: expected a header with id,at,note, found 'id,note'");
    }

    [Fact]
    public void Csv_bad_cell_is_a_bad_record_whose_payload_keeps_the_raw_cells()
    {
        var (run, _) = Read(Csv, "id,at,note\n1,2025-01-01T00:00:00Z,fine\nabc,2025-01-01T00:00:00Z,bad\n");

        run.Rows.ShouldBe(1);
        run.Issues.Single().ShouldBe(new RecordIssue(2, 3, "id", "wrong type: expected integer, got 'abc'"));
        run.Quarantined.Single().Payload.ShouldBe("""{"id":"abc","at":"2025-01-01T00:00:00Z","note":"bad"}""");
    }

    [Fact]
    public void Csv_with_invalid_utf8_fails_the_file()
    {
        var bytes = Encoding.UTF8.GetBytes("id,at,note\n1,2025-01-01T00:00:00Z,").Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.UTF8.GetBytes("\n")).ToArray();

        var (run, _) = Read(Csv, bytes);

        run.Rejected.ShouldBeTrue();
        run.Fatal!.Message.ShouldContain("unreadable CSV");
    }
}
