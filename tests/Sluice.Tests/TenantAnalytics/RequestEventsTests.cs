using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Schema;

namespace Sluice.Tests.TenantAnalytics;

/// <summary>
/// The one pass over an <c>application/json</c> body must decide exactly what the exact split followed by one parse per
/// event decides: the same slices, rejections, dedup hashes and refusals, or hand the body back for the 400.
/// </summary>
public sealed class RequestEventsTests
{
    private const string Tenant = "acme";

    private static readonly EventField[] Fields =
    [
        new("event_id", FieldType.String, true, false, null, null),
        new("event_type", FieldType.String, true, false, ["page_view", "add_to_cart", "purchase", "refund"], null),
        new("event_ts", FieldType.Timestamp, true, false, null, null),
        new("customer.email", FieldType.String, false, true, null, null),
        new("order.total", FieldType.Double, false, false, null, new FieldCondition("event_type", ["purchase", "refund"])),
    ];

    private static readonly EventChild Items = new("items", "events_items", false, [new("sku", FieldType.String, true, false, null, null), new("qty", FieldType.Integer, true, false, null, null)]);

    private static HttpIngestOptions Options(int maxEvents = 100_000, long maxEventBytes = 1L << 20) => new()
    {
        Stream = "ecommerce", Table = "events", TimeField = "event_ts", DedupKey = "event_id",
        MaxEventsPerRequest = maxEvents, MaxEventBytes = maxEventBytes,
        Versions = [new EventSchemaVersion(1, "v1.yaml", Fields, [Items]), new EventSchemaVersion(2, "v2.yaml", [.. Fields, new("session.device", FieldType.String, false, false, null, null)], [Items])],
    };

    private static string Event(string id, string rest = "\"event_type\":\"page_view\"") =>
        $"{{\"event_id\":\"{id}\",\"schema_version\":1,\"event_ts\":\"2025-11-08T10:30:00Z\",{rest}}}";

    private static RequestEvents? OnePass(byte[] body, HttpIngestOptions? options = null, EventParser? parser = null)
    {
        options ??= Options();
        var request = new RequestEvents(options, Tenant);
        return request.TryReadJson(body, parser ?? new EventParser(new StreamShape(options), null, 16)) ? request : null;
    }

    private static RequestEvents Exact(byte[] body, HttpIngestOptions? options = null)
    {
        options ??= Options();
        var events = new List<EventSlice>();
        RequestBody.SplitJson(body, events).ShouldBeNull();
        var request = new RequestEvents(options, Tenant);
        request.Read(body, events, new EventParser(new StreamShape(options), null, 16));
        return request;
    }

    private static RequestEvents ReadsAsTheExactSplit(string text, HttpIngestOptions? options = null) => ReadsAsTheExactSplit(Encoding.UTF8.GetBytes(text), options);

    private static RequestEvents ReadsAsTheExactSplit(byte[] body, HttpIngestOptions? options = null)
    {
        var exact = Exact(body, options);
        var onePass = OnePass(body, options);
        onePass.ShouldNotBeNull();
        onePass.Valid.ShouldBe(exact.Valid);
        onePass.Rejected.ShouldBe(exact.Rejected);
        (onePass.Refusal?.Status, onePass.Refusal?.Message).ShouldBe((exact.Refusal?.Status, exact.Refusal?.Message));
        return onePass;
    }

    private static string Text(string body, EventSlice slice) => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(body), slice.Start, slice.Length);

    [Fact]
    public void Valid_and_invalid_events_of_an_array_keep_their_indexes_and_exact_slices()
    {
        string[] events =
        [
            Event("e0", "\"event_type\":\"add_to_cart\",\"items\":[{\"sku\":\"A\",\"qty\":2},{\"sku\":\"B\",\"qty\":1,\"tags\":[[1],[2]]}]"),
            Event("e1", "\"event_type\":\"sell\""),
            Event("e2", "\"event_type\":\"purchase\",\"order\":{\"total\":9.5},\"items\":[{\"sku\":\"A\",\"qty\":1}]"),
            Event("e3", "\"event_type\":\"page_view\",\"items\":[{\"sku\":\"A\",\"qty\":2},{\"sku\":\"B\",\"qty\":\"1\"}]"),
            Event("e4", "\"event_type\":\"purchase\""),
        ];
        var body = "[" + string.Join(",", events) + "]";
        var request = ReadsAsTheExactSplit(body);
        request.Valid.Select(v => v.Slice.Index).ShouldBe([0, 2]);
        request.Valid.Select(v => Text(body, v.Slice)).ShouldBe([events[0], events[2]]);
        request.Valid.Select(v => v.Hash).ShouldBe([DedupIndex.Hash(Tenant, "e0"), DedupIndex.Hash(Tenant, "e2")]);
        request.Rejected.Select(r => (r.Rejection.Index, r.Rejection.Field)).ShouldBe([(1, "event_type"), (3, "items[1].qty"), (4, "order.total")]);
        request.Rejected.Select(r => Text(body, r.Slice)).ShouldBe([events[1], events[3], events[4]]);
        request.Rejected.ShouldAllBe(r => r.Rejection.Line == null);
        request.Refusal.ShouldBeNull();
    }

    [Fact]
    public void Escaped_property_names_and_values_read_as_their_text()
    {
        const string body = """[{"event\u005fid":"\u00e9-1","schema_version":1,"event_ts":"2025-11-08T10:30:00Z","event_type":"page\u005fview","customer":{"em\u0061il":"a\"b"},"tenant\u005fid":"\u0061cme"}]""";
        var request = ReadsAsTheExactSplit(body);
        request.Rejected.ShouldBeEmpty();
        request.Valid.Single().Hash.ShouldBe(DedupIndex.Hash(Tenant, "é-1"));
    }

    [Theory]
    [InlineData("{\"event_id\":\"e0\",\"schema_version\":1,\"event_ts\":\"2025-11-08T10:30:00Z\",\"event_type\":\"page_view\"}", 1)]
    [InlineData("[]", 0)]
    [InlineData(" [ ] ", 0)]
    [InlineData("\uFEFF[{\"event_id\":\"e0\",\"schema_version\":1,\"event_ts\":\"2025-11-08T10:30:00Z\",\"event_type\":\"page_view\"}]\r\n", 1)]
    [InlineData("\uFEFF {\"event_id\":\"x}]{[\\\"\\\\\",\"n\":{\"m\":[{}]}}\r\n", 0)]
    [InlineData("[\n\t{\"event_id\":\"e0\",\"schema_version\":1,\"event_ts\":\"2025-11-08T10:30:00Z\",\"event_type\":\"page_view\"} ,\r\n  {\"event_id\":\"e1\"}\n,{}\t]\n", 1)]
    [InlineData("[ {} ,{\"k\":\"\u00e9\\u00e9\"} ]", 0)]
    public void Single_objects_empty_arrays_byte_order_marks_and_white_space_read_as_the_exact_split(string body, int valid) =>
        ReadsAsTheExactSplit(body).Valid.Count.ShouldBe(valid);

    [Fact]
    public void Generated_batches_read_as_the_exact_split()
    {
        var generator = new Sluice.Recipes.Generators.EcommerceEvents(new Random(5));
        for (var round = 0; round < 20; round++)
        {
            var body = generator.Batch(Tenant, Enumerable.Range(0, 1 + round * 7).Select(i => $"e{round}-{i}").ToList(), new DateTime(2025, 11, 9, 0, 0, 0, DateTimeKind.Utc));
            ReadsAsTheExactSplit(body).Rejected.ShouldBeEmpty();
        }
    }

    [Theory]
    [InlineData("[{\"a\":1},\n{\"b\" 2}]", 2, 6)]
    [InlineData("[{\"event_id\":tru}]", 1, 17)]
    [InlineData("[{\"a\":1},]", 1, 10)]
    [InlineData("[{\"a\":1} {\"b\":2}]", 1, 10)]
    [InlineData("[{\"a\":\"unterminated}]", 1, 22)]
    [InlineData("[{\"a\":[1}]", 1, 9)]
    [InlineData("{\"a\":1}}", 1, 8)]
    [InlineData("{\"a\":1} {\"b\":2}", 1, 9)]
    [InlineData("", 1, 1)]
    [InlineData("   ", 1, 1)]
    public void A_body_that_is_not_json_is_handed_back_for_the_exact_splits_400(string text, long line, long position)
    {
        var body = Encoding.UTF8.GetBytes(text);
        OnePass(body).ShouldBeNull();
        var error = RequestBody.SplitJson(body, []);
        error.ShouldNotBeNull();
        (error.Line, error.Byte).ShouldBe((line, position));
    }

    [Fact]
    public void Invalid_utf8_and_values_that_are_not_objects_are_handed_back_too()
    {
        OnePass([(byte)'[', (byte)'{', (byte)'"', (byte)'a', (byte)'"', (byte)':', (byte)'"', 0xC3, (byte)'"', (byte)'}', (byte)']']).ShouldBeNull();
        OnePass("[1, 2]"u8.ToArray()).ShouldBeNull();
        OnePass("[{}, \"text\"]"u8.ToArray()).ShouldBeNull();
        OnePass("\"text\""u8.ToArray()).ShouldBeNull();
        // Those split without error: each value that is not an object is rejected on its own.
        var exact = Exact("[{}, 2]"u8.ToArray());
        exact.Rejected.Select(r => r.Rejection.Index).ShouldBe([0, 1]);
        exact.Rejected[1].Rejection.Error.ShouldContain("an event is a JSON object");
    }

    [Fact]
    public void An_event_naming_another_tenant_refuses_the_request_unless_the_body_is_not_json_or_has_too_many_events()
    {
        var foreign = Event("e1", "\"event_type\":\"page_view\",\"tenant_id\":\"other\"");
        var own = Event("e0", "\"tenant_id\":\"acme\",\"event_type\":\"page_view\"");
        var refusal = ReadsAsTheExactSplit($"[{own},{foreign},{Event("e2")}]").Refusal;
        refusal.ShouldNotBeNull();
        refusal.Status.ShouldBe(IngestStatus.WrongTenant);
        refusal.Message.ShouldBe("event 1 has tenant_id 'other' but the token is for tenant 'acme'; nothing of this request was accepted");
        ReadsAsTheExactSplit($"[{Event("e0", "\"event_type\":\"sell\",\"tenant_id\":\"other\"")}]").Refusal!.Status.ShouldBe(IngestStatus.WrongTenant);

        OnePass(Encoding.UTF8.GetBytes($"[{foreign},{{\"event_id\":tru}}]")).ShouldBeNull();

        var tooMany = ReadsAsTheExactSplit($"[{foreign},{own},{own}]", Options(maxEvents: 2)).Refusal;
        tooMany.ShouldNotBeNull();
        tooMany.Status.ShouldBe(IngestStatus.TooManyEvents);
        tooMany.Message!.ShouldStartWith("3 events in one request, more than max_events_per_request (2)");
        ReadsAsTheExactSplit($"[{own},{own}]", Options(maxEvents: 2)).Refusal.ShouldBeNull();
    }

    [Fact]
    public void An_event_over_max_event_bytes_is_rejected_on_its_own()
    {
        var big = Event("e1", "\"event_type\":\"page_view\",\"customer\":{\"email\":\"" + new string('x', 200) + "\"}");
        var request = ReadsAsTheExactSplit($"[{Event("e0")},{big}]", Options(maxEventBytes: 150));
        request.Valid.Select(v => v.Slice.Index).ShouldBe([0]);
        request.Rejected.Single().Rejection.Error.ShouldStartWith($"the event is {Encoding.UTF8.GetByteCount(big)} bytes, more than max_event_bytes");
    }

    [Fact]
    public void A_parser_left_inside_an_event_by_a_broken_body_carries_nothing_into_the_next_event()
    {
        var options = Options();
        var parser = new EventParser(new StreamShape(options), null, 16);
        OnePass(Encoding.UTF8.GetBytes("[{\"event_id\":\"e0\",\"schema_version\":1,\"event_ts\":\"2025-11-08T10:30:00Z\",\"event_type\":tru}]"), options, parser).ShouldBeNull();
        var request = OnePass(Encoding.UTF8.GetBytes("[{\"schema_version\":1,\"event_type\":\"page_view\"}]"), options, parser);
        request.ShouldNotBeNull();
        request.Rejected.Single().Rejection.Field.ShouldBe("event_id");
    }
}
