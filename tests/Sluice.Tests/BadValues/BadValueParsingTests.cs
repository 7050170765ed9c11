using System.Text;
using Sluice.Connectors.Files;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Config;
using Sluice.Core.Schema;
using Sluice.Core.Text;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;
using static Sluice.Tests.Files.ReaderHarness;
using static Sluice.Tests.Mapping.RecordMapperTests;

namespace Sluice.Tests.BadValues;

/// <summary>
/// Every class of hostile value, in every parser of event data (HTTP ingest, the record mapper, files JSON and CSV):
/// a number out of its type's range, a lone surrogate escape, a timestamp its offset moves out of range. Each is
/// that record's problem with the field and why, never an exception, and never a value stored.
/// </summary>
public sealed class BadValueParsingTests
{
    private static readonly EventField[] Fields =
    [
        new("event_id", FieldType.String, true, false, null, null),
        new("event_type", FieldType.String, true, false, ["view", "buy"], null),
        new("ts", FieldType.Timestamp, true, false, null, null),
        new("customer.email", FieldType.String, false, true, null, null),
        new("customer.id", FieldType.String, false, false, null, null),
        new("order.total", FieldType.Double, false, false, null, null),
        new("day", FieldType.Date, false, false, null, null),
    ];

    private static readonly EventChild Items = new("items", "things_items", false,
        [new("sku", FieldType.String, true, false, null, null), new("qty", FieldType.Integer, true, false, null, null), new("price", FieldType.Double, false, false, null, null)]);

    private static HttpIngestOptions Options() => new()
    {
        Stream = "things", Table = "things", TimeField = "ts", DedupKey = "event_id", TenantField = "tenant_id",
        Versions = [new EventSchemaVersion(1, "v1.yaml", Fields, [Items])],
    };

    private static string Event(string rest, string ts = "2025-03-04T05:06:07Z") =>
        "{\"event_id\":\"e1\",\"schema_version\":1,\"event_type\":\"view\",\"ts\":\"" + ts + "\"" + (rest.Length == 0 ? "" : "," + rest) + "}";

    public static TheoryData<string, string, string> HttpCases() => new()
    {
        { Event("\"order\":{\"total\":1e309}"), "order.total", "out of range for a double" },
        { Event("\"order\":{\"total\":-1e309}"), "order.total", "out of range for a double" },
        { Event("\"order\":{\"total\":" + new string('9', 400) + "}"), "order.total", "out of range for a double" },
        { Event("\"items\":[{\"sku\":\"A\",\"qty\":1,\"price\":1e400}]"), "items[0].price", "out of range for a double" },
        { Event("\"items\":[{\"sku\":\"A\",\"qty\":99999999999999999999}]"), "items[0].qty", "out of range for a whole number" },
        { Event("\"customer\":{\"id\":\"\\ud800\"}"), "customer.id", "lone UTF-16 surrogate" },
        { Event("\"customer\":{\"email\":\"a\\udc00b\"}"), "customer.email", "lone UTF-16 surrogate" },
        { Event("\"items\":[{\"sku\":\"\\ud800\\u0041\",\"qty\":1}]"), "items[0].sku", "lone UTF-16 surrogate" },
        { Event("\"day\":\"\\ud800\""), "day", "lone UTF-16 surrogate" },
        { Event("\"tenant_id\":\"\\udfff\""), "tenant_id", "lone UTF-16 surrogate" },
        { Event("\"customer\":{\"x\\ud800\":1}"), "customer.x\\ud800", "property name" },
        { Event("").Replace("\"event_type\":\"view\"", "\"event_type\":\"vi\\ud800\"", StringComparison.Ordinal), "event_type", "lone UTF-16 surrogate" },
        { Event("", ts: "\\ud8002025-03-04T05:06:07Z"), "ts", "lone UTF-16 surrogate" },
        { Event("", ts: "9999-12-31T23:59:59-01:00"), "ts", "unparsable timestamp" },
        { Event("", ts: "0001-01-01T00:00:00+01:00"), "ts", "unparsable timestamp" },
        { Event("", ts: "9999-12-31T23:59:59.9999999-14:00"), "ts", "unparsable timestamp" },
        { Event("", ts: "9999\\u002d12-31T23:59:59-01:00"), "ts", "unparsable timestamp" },
    };

    [Theory]
    [MemberData(nameof(HttpCases))]
    public void Http_ingest_rejects_the_event_with_the_field_whether_it_validates_or_keeps(string json, string field, string message)
    {
        foreach (var keep in new[] { false, true })
        {
            var parser = new EventParser(new StreamShape(Options()), null);
            var problem = parser.Parse(Encoding.UTF8.GetBytes(json), "t1", DateTime.UnixEpoch, 0, keep, out _);
            problem.ShouldNotBeNull($"keep: {keep}");
            problem.Value.Field.ShouldBe(field);
            problem.Value.Message.ShouldContain(message);
            parser.Flush().Sum(b => b.Count).ShouldBe(0, "nothing of a rejected event is kept");
            parser.Parse(Encoding.UTF8.GetBytes(Event("\"order\":{\"total\":-0.0}")), "t1", DateTime.UnixEpoch, 1, keep, out _).ShouldBeNull("the parser is still usable");
        }
    }

    [Fact]
    public void A_json_body_with_a_bad_value_still_keeps_its_good_events_in_one_pass_and_flattened()
    {
        var options = Options();
        var good = Event("\"order\":{\"total\":2.5}");
        var body = Encoding.UTF8.GetBytes($"[{good.Replace("e1", "g1", StringComparison.Ordinal)},{Event("\"customer\":{\"id\":\"\\ud800\"}").Replace("e1", "b1", StringComparison.Ordinal)},{Event("", ts: "9999-12-31T23:59:59-01:00").Replace("e1", "b2", StringComparison.Ordinal)},{Event("\"order\":{\"total\":1e309}").Replace("e1", "b3", StringComparison.Ordinal)},{good.Replace("e1", "g2", StringComparison.Ordinal)}]");
        foreach (var flatten in new[] { false, true })
        {
            var request = new RequestEvents(options, "t1", flatten, DateTime.UnixEpoch);
            var parser = new EventParser(new StreamShape(options), null);
            request.TryReadJson(body, parser).ShouldBeTrue();
            request.Valid.Count.ShouldBe(2);
            request.Rejected.Select(r => (r.Rejection.Index, r.Rejection.Field)).ShouldBe([(1, "customer.id"), (2, "ts"), (3, "order.total")]);
            if (flatten) { parser.Flush()[0].Count.ShouldBe(2); }
        }
    }

    [Theory]
    [InlineData("9999-12-31T23:59:59-01:00")]
    [InlineData("9999-12-31 23:59:59-0100")]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("0001-01-01T00:30:00+14")]
    public void Timestamps_moved_out_of_range_by_their_offset_are_not_parsed(string text)
    {
        Timestamps.TryParseUtc(Encoding.UTF8.GetBytes(text), out _).ShouldBeFalse();
        Timestamps.TryParseUtc(text.AsSpan(), out _).ShouldBeFalse();
        Timestamps.TryParseUtc(Encoding.UTF8.GetBytes("2025-11-08T10:30:00-01:00"), out var ok).ShouldBeTrue();
        ok.ShouldBe(new DateTime(2025, 11, 8, 11, 30, 0, DateTimeKind.Utc));
    }

    [Theory]
    [InlineData(@"\ud800", true)]
    [InlineData(@"a\udc00", true)]
    [InlineData(@"\ud800\u0041", true)]
    [InlineData(@"\ud800\n", true)]
    [InlineData(@"\udbff\udfff", false)]
    [InlineData(@"\\ud800", false)]
    [InlineData(@"\u00e9\n\u0000", false)]
    [InlineData(@"\ud83d\ude00\ud83d", true)]
    public void Lone_surrogate_escapes_are_found_in_raw_json_text(string raw, bool lone) =>
        JsonValues.HasLoneSurrogate(Encoding.UTF8.GetBytes(raw)).ShouldBe(lone);

    [Fact]
    public void A_clipped_message_never_ends_in_half_a_surrogate_pair()
    {
        var text = new string('a', 56) + "\U0001F600" + new string('b', 10);
        var clipped = TextClip.Clip(text, 60);
        clipped.ShouldBe(new string('a', 56) + "...");
        Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(clipped)).ShouldBe(clipped);
    }

    private static string Reminder(string caseId = "\"c\"", string score = "0.8", string timestamp = "2025-07-21T10:34:00Z", string extra = "") =>
        "{\"salesforce_object_id\": \"x\", \"event_type\": \"e\", \"timestamp\": \"" + timestamp + "\", \"case_id\": " + caseId +
        ", \"client_id\": \"k\", \"attorney_email\": \"a@b.c\", \"attributes\": {\"confidence_score\": " + score + extra + "}}";

    public static TheoryData<string, string, string> MapperCases() => new()
    {
        { Reminder(score: "1e309"), "attributes.confidence_score", "out of range for a double" },
        { Reminder(score: "-1e309"), "attributes.confidence_score", "out of range for a double" },
        { Reminder(score: "\"1e309\""), "attributes.confidence_score", "out of range for a double" },
        { Reminder(score: "\"NaN\""), "attributes.confidence_score", "out of range for a double" },
        { Reminder(score: "\"-Infinity\""), "attributes.confidence_score", "out of range for a double" },
        { Reminder(score: "\"\\ud800\""), "attributes.confidence_score", "lone UTF-16 surrogate" },
        { Reminder(caseId: "\"CASE-\\ud800\""), "case_id", "lone UTF-16 surrogate" },
        { Reminder(timestamp: "9999-12-31T23:59:59-01:00"), "timestamp", "expected an ISO-8601 timestamp" },
        { Reminder(timestamp: "\\udc00"), "timestamp", "lone UTF-16 surrogate" },
    };

    [Theory]
    [MemberData(nameof(MapperCases))]
    public void The_record_mapper_rejects_the_record_with_the_field(string json, string field, string message)
    {
        var mapper = Mapper(Salesforce);
        var builder = new ColumnBatchBuilder(AttorneyEventModel.Schema);
        var issue = mapper.Map(Encoding.UTF8.GetBytes(json), builder);
        issue.ShouldNotBeNull();
        issue.Value.Field.ShouldBe(field);
        issue.Value.Message.ShouldContain(message);
        builder.Count.ShouldBe(0);
        mapper.Map(Encoding.UTF8.GetBytes(Reminder(extra: ", \"n\\ud800\": 1")), builder).ShouldBeNull("an unmapped name that is not Unicode is skipped like any unmapped one");
    }

    [Fact]
    public void A_mapping_default_that_is_not_a_finite_double_is_refused_at_load()
    {
        var errors = new ConfigErrors();
        RecordMapping.Parse(ConfigMap.Parse(Salesforce.Replace("confidence_score: attributes.confidence_score", "confidence_score: {from: attributes.confidence_score, default: 1e309}", StringComparison.Ordinal), "m.yaml", errors)!, AttorneyEventModel.Schema, "m");
        errors.All.ShouldContain(e => e.ToString().Contains("confidence_score.default", StringComparison.Ordinal));
    }

    private static readonly FileType NdjsonType = Type("""
        name: bad_nd
        pattern: "*.ndjson"
        format: ndjson
        table: raw.events
        event_time: at
        on_invalid: quarantine_rows
        fields:
          id: integer
          at: timestamp
          amount: { type: double, required: false }
          note: { type: string, required: false }
          day: { type: date, required: false }
        """);

    [Fact]
    public void Files_ndjson_quarantines_each_bad_value_with_its_field_and_lands_the_good_lines()
    {
        string Line(string rest, string at = "2025-01-01T00:00:00Z") => "{\"id\": 1, \"at\": \"" + at + "\"" + rest + "}";
        var lines = new[]
        {
            Line(""),
            Line(", \"amount\": 1e309"),
            Line(", \"amount\": -1e309"),
            "{\"id\": 99999999999999999999, \"at\": \"2025-01-01T00:00:00Z\"}",
            Line(", \"note\": \"\\ud800\""),
            Line(", \"day\": \"\\udc00\""),
            Line("", at: "9999-12-31T23:59:59-01:00"),
            Line("", at: "\\ud800"),
            Line(", \"n\\ud800\": 1, \"amount\": 2.5"),
        };

        var (run, batches) = Read(NdjsonType, string.Join("\n", lines));

        run.Rows.ShouldBe(2);
        batches.Sum(b => b.Count).ShouldBe(2);
        run.Issues.Select(i => (i.Line, i.Field)).ShouldBe([(2, "amount"), (3, "amount"), (4, "id"), (5, "note"), (6, "day"), (7, "at"), (8, "at")]);
        run.Issues[0].Message.ShouldContain("out of range for a double");
        run.Issues[2].Message.ShouldContain("out of range for a whole number");
        run.Issues[3].Message.ShouldContain("lone UTF-16 surrogate");
    }

    [Fact]
    public void Text_that_is_not_utf8_is_refused_by_the_files_json_reader_with_its_field_and_by_the_mapper()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"id\": 1, \"at\": \"2025-01-01T00:00:00Z\", \"note\": \"a").Concat(new byte[] { 0xC3, 0x28 })
            .Concat(Encoding.UTF8.GetBytes("\"}\n{\"id\": 2, \"at\": \"2025-01-01T00:00:00Z\", \"note\": \"b\"}\n")).ToArray();

        var (run, batches) = Read(NdjsonType, bytes);

        batches.Sum(b => b.Count).ShouldBe(1);
        run.Issues.Single().Field.ShouldBe("note");
        run.Issues.Single().Message.ShouldContain("not valid UTF-8");
        var json = Encoding.UTF8.GetBytes(Reminder(caseId: "\"c~\""));
        json[Array.IndexOf(json, (byte)'~')] = 0xFF;
        var issue = Mapper(Salesforce).Map(json, new ColumnBatchBuilder(AttorneyEventModel.Schema));
        issue!.Value.Message.ShouldContain("not valid UTF-8");
    }

    [Fact]
    public void Files_json_document_skips_a_top_level_name_that_is_not_unicode_and_reads_the_records()
    {
        var text = "{\"x\\ud800\": 1, \"vehicles_events\": [{\"vehicle_id\": \"v1\", \"event_time\": \"2025-01-01T00:00:00Z\", \"event_source\": \"s\", \"event_type\": \"\\udc00\"}, {\"vehicle_id\": \"v2\", \"event_time\": \"2025-01-01T00:00:00Z\", \"event_source\": \"s\", \"event_type\": \"t\"}]}";

        var (run, batches) = Read(VehicleEvents, text);

        run.Fatal.ShouldBeNull();
        batches.Sum(b => b.Count).ShouldBe(1);
        run.Issues.Single().Field.ShouldBe("event_type");
    }

    private static readonly FileType CsvType = Type("""
        name: bad_csv
        pattern: "*.csv"
        format: csv
        table: raw.events
        event_time: at
        on_invalid: quarantine_rows
        fields:
          id: integer
          at: timestamp
          amount: { type: double, required: false }
        """);

    [Fact]
    public void Files_csv_quarantines_numbers_a_double_cannot_hold_and_overflowing_timestamps()
    {
        var text = "id,at,amount\n1,2025-01-01T00:00:00Z,2.5\n2,2025-01-01T00:00:00Z,1e309\n3,2025-01-01T00:00:00Z,NaN\n4,2025-01-01T00:00:00Z,-Infinity\n5,9999-12-31T23:59:59-01:00,1\n";

        var (run, batches) = Read(CsvType, text);

        batches.Sum(b => b.Count).ShouldBe(1);
        run.Issues.Select(i => i.Field).ShouldBe(["amount", "amount", "amount", "at"]);
        run.Issues[0].Message.ShouldContain("out of range for a double");
    }

    [Theory]
    [InlineData("9999-12-31 23:59:59-01")]
    [InlineData("0001-01-01 00:00:00+01")]
    [InlineData("2025-01-01 00:00:00+99999999")]
    public void A_postgres_timestamp_its_offset_moves_out_of_range_does_not_parse(string text) =>
        Sluice.Connectors.Postgres.PgTypes.TryTimestamp(text, out _).ShouldBeFalse();
}
