using System.Text;
using Sluice.Connectors.Files;
using static Sluice.Tests.Files.ReaderHarness;

namespace Sluice.Tests.Files;

public sealed class JsonDocumentReaderTests
{
    private const string Good = """
        {
          "vehicles_events": [
            {"vehicle_id": "V1", "event_time": "2025-11-08T10:30:00Z", "event_source": "sensor", "event_type": "braking"},
            {"vehicle_id": "V2", "event_time": "2025-11-08T11:00:00.250+02:00", "event_source": "api", "event_type": "idle", "extra": {"ignored": [1, 2]}}
          ]
        }
        """;

    [Fact]
    public void Reads_every_record_of_the_root_array_and_converts_times_to_utc()
    {
        var (run, batches) = Read(VehicleEvents, Good);

        run.Rejected.ShouldBeFalse();
        run.Rows.ShouldBe(2);
        Column(batches, 0).ShouldBe(["V1", "V2"]);
        var times = batches.SelectMany(b => (DateTime?[])b.Columns[1]).ToList();
        times[0].ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, DateTimeKind.Utc));
        times[1].ShouldBe(new DateTime(2025, 11, 8, 9, 0, 0, 250, DateTimeKind.Utc));
    }

    [Fact]
    public void Skips_other_root_keys_before_and_after_the_records()
    {
        var (run, _) = Read(VehicleEvents, """{"meta": {"a": [1, {"b": 2}]}, "vehicles_events": [{"vehicle_id": "V1", "event_time": "2025-11-08T10:30:00Z", "event_source": "s", "event_type": "t"}], "count": 1}""");

        run.Rejected.ShouldBeFalse();
        run.Rows.ShouldBe(1);
    }

    [Fact]
    public void An_empty_array_is_a_valid_file_with_no_rows()
    {
        var (run, batches) = Read(VehicleEvents, """{"vehicles_events": []}""");

        run.Rejected.ShouldBeFalse();
        run.Rows.ShouldBe(0);
        batches.ShouldBeEmpty();
    }

    [Fact]
    public void A_wrong_root_key_fails_the_file_naming_the_expected_and_found_keys()
    {
        var (run, _) = Read(VehicleEvents, """{"vehicle_records": [{"vehicle_id": "V1"}]}""");

        run.Rejected.ShouldBeTrue();
        run.Fatal!.Message.ShouldBe("wrong root key: expected 'vehicles_events', found keys 'vehicle_records'");
    }

    [Fact]
    public void Malformed_json_fails_the_file_with_line_and_byte()
    {
        var (run, _) = Read(VehicleEvents, "{\n\"vehicles_events\": [\n{\"vehicle_id\": \"V1\",, }\n]}");

        run.Rejected.ShouldBeTrue();
        run.Fatal!.Line.ShouldBe(3);
        run.Fatal.Message.ShouldStartWith("malformed JSON at line 3, byte ");
    }

    [Fact]
    public void Json_cut_off_at_the_end_is_malformed_not_incomplete()
    {
        var text = Good[..(Good.Length - 10)];

        var (run, _) = Read(VehicleEvents, text);

        run.Rejected.ShouldBeTrue();
        run.Fatal!.Message.ShouldContain("cut off");
        run.Rows.ShouldBe(1, "the record before the cut was read; nothing of a rejected file lands");
    }

    [Theory]
    [InlineData("""{"vehicle_id": 123, "event_time": "2025-11-08T10:30:00Z", "event_source": "s", "event_type": "t"}""", "vehicle_id", "wrong type: expected text, got number 123")]
    [InlineData("""{"vehicle_id": "V1", "event_time": "2025-11-08T10:30:00Z", "event_source": "s"}""", "event_type", "missing required field")]
    [InlineData("""{"vehicle_id": "V1", "event_time": null, "event_source": "s", "event_type": "t"}""", "event_time", "missing required field")]
    [InlineData("""{"vehicle_id": "V1", "event_time": "yesterday", "event_source": "s", "event_type": "t"}""", "event_time", "unparsable timestamp 'yesterday' (expected ISO-8601, for example 2025-11-08T10:30:00Z)")]
    [InlineData("""{"vehicle_id": ["V1"], "event_time": "2025-11-08T10:30:00Z", "event_source": "s", "event_type": "t"}""", "vehicle_id", "wrong type: expected text, got an array")]
    public void An_invalid_record_is_reported_with_its_line_record_and_field(string record, string field, string message)
    {
        var text = "{\"vehicles_events\": [\n" + Valid + ",\n" + record + "\n]}";

        var (run, _) = Read(VehicleEvents, text);

        run.Rejected.ShouldBeTrue("reject_file is the default policy");
        run.Rows.ShouldBe(1);
        run.BadRows.ShouldBe(1);
        run.Issues.Single().ShouldBe(new RecordIssue(2, 3, field, message));
    }

    [Fact]
    public void A_record_that_is_not_an_object_is_a_bad_record()
    {
        var (run, _) = Read(VehicleEvents, "{\"vehicles_events\": [" + Valid + ", 42, " + Valid + "]}");

        run.Rows.ShouldBe(2);
        run.Issues.Single().Message.ShouldBe("record is not a JSON object (found a number)");
        run.Issues.Single().Record.ShouldBe(2);
    }

    [Fact]
    public void Records_split_across_read_buffers_parse_as_if_contiguous()
    {
        // Enough records that several land on the 1 MiB buffer boundary, with escapes and multi-byte text.
        var sb = new StringBuilder("{\"vehicles_events\": [\n");
        const int count = 30_000;
        for (var i = 0; i < count; i++)
        {
            if (i > 0) { sb.Append(",\n"); }
            sb.Append("{\"vehicle_id\": \"V").Append(i).Append("\\u00e9\", \"event_time\": \"2025-11-08T10:30:00Z\", \"event_source\": \"capteur é\", \"event_type\": \"t").Append(i % 7).Append("\"}");
        }

        sb.Append("\n]}");
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        bytes.Length.ShouldBeGreaterThan(2 * 1024 * 1024);

        var (run, batches) = Read(VehicleEvents, bytes, batchRows: 4096);

        run.Rejected.ShouldBeFalse();
        run.Rows.ShouldBe(count);
        var ids = Column(batches, 0);
        ids.Count.ShouldBe(count);
        ids[12_345].ShouldBe("V12345é");
        Column(batches, 2).Distinct().ShouldBe(["capteur é"]);
        batches.ShouldAllBe(b => b.Count <= 4096 + 20_000, "batches are flushed after every buffer scan once full");
    }

    [Fact]
    public void Line_numbers_count_across_buffer_refills()
    {
        var sb = new StringBuilder("{\"vehicles_events\": [\n");
        for (var i = 0; i < 20_000; i++) { sb.Append(Valid).Append(",\n"); }
        sb.Append("""{"vehicle_id": "V1", "event_time": "nope", "event_source": "s", "event_type": "t"}""").Append("\n]}");

        var (run, _) = Read(VehicleEvents, sb.ToString());

        run.Issues.Single().Line.ShouldBe(20_002);
        run.Issues.Single().Record.ShouldBe(20_001);
    }

    [Fact]
    public void A_bare_array_is_read_when_the_type_has_no_root_key()
    {
        var type = VehicleEvents with { RootKey = null };

        var (run, _) = Read(type, "[" + Valid + "," + Valid + "]");

        run.Rows.ShouldBe(2);
        run.Rejected.ShouldBeFalse();
    }

    [Fact]
    public void Quarantine_policy_keeps_good_rows_and_collects_bad_ones_with_their_raw_text()
    {
        var type = VehicleEvents with { OnInvalid = InvalidRowPolicy.QuarantineRows };
        var bad = """{"vehicle_id": "V9", "event_time": "2025-13-40T00:00:00Z", "event_source": "s", "event_type": "t"}""";

        var (run, batches) = Read(type, "{\"vehicles_events\": [" + Valid + ", " + bad + "]}");

        run.Rejected.ShouldBeFalse();
        batches.Sum(b => b.Count).ShouldBe(1);
        run.Quarantined.Single().Payload.ShouldBe(bad);
        run.Quarantined.Single().Issue.Field.ShouldBe("event_time");
    }

    [Fact]
    public void Too_many_bad_rows_fail_a_quarantining_file()
    {
        var type = VehicleEvents with { OnInvalid = InvalidRowPolicy.QuarantineRows, MaxBadRows = 2 };
        var bad = """{"vehicle_id": 1, "event_time": "2025-11-08T10:30:00Z", "event_source": "s", "event_type": "t"}""";

        var (run, _) = Read(type, "{\"vehicles_events\": [" + string.Join(",", Enumerable.Repeat(bad, 5)) + "]}");

        run.Rejected.ShouldBeTrue();
        run.Reason().ShouldStartWith("3 invalid records, more than max_bad_rows (2)");
    }

    private const string Valid = """{"vehicle_id": "V1", "event_time": "2025-11-08T10:30:00Z", "event_source": "s", "event_type": "t"}""";
}
