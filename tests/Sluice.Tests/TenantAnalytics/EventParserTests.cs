using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Schema;

namespace Sluice.Tests.TenantAnalytics;

public sealed class EventParserTests
{
    private static readonly EventField[] Common =
    [
        new("event_id", FieldType.String, true, false, null, null),
        new("event_type", FieldType.String, true, false, ["view", "buy"], null),
        new("ts", FieldType.Timestamp, true, false, null, null),
        new("customer.email", FieldType.String, false, true, null, null),
        new("order.total", FieldType.Double, false, false, null, new FieldCondition("event_type", ["buy"])),
    ];

    private static readonly EventChild Items = new("items", "things_items", false, [new("sku", FieldType.String, true, false, null, null), new("qty", FieldType.Integer, true, false, null, null)]);

    private static StreamShape Shape() => new(new HttpIngestOptions
    {
        Stream = "things", Table = "things", TimeField = "ts", DedupKey = "event_id",
        Versions =
        [
            new EventSchemaVersion(1, "v1.yaml", Common, [Items]),
            new EventSchemaVersion(2, "v2.yaml", [.. Common, new("session.device", FieldType.String, false, false, null, null)], [Items]),
        ],
    });

    private static EventProblem? Parse(EventParser parser, string json, bool keep = true) =>
        parser.Parse(Encoding.UTF8.GetBytes(json), "t1", new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc), 42, keep, out _);

    [Fact]
    public void Validating_only_checks_what_keeping_checks_escaped_enumerations_and_child_fields_included()
    {
        var parser = new EventParser(Shape(), null);
        static string Event(string rest) => ("{'event_id':'e1','schema_version':1,'ts':'2025-03-04T05:06:07Z'," + rest + "}").Replace('\'', '"');
        Parse(parser, Event(@"'event_type':'vi\u0065w','items':[{'sku':'A','qty':2}]"), keep: false).ShouldBeNull();
        Parse(parser, Event(@"'event_type':'vi\u0065ws'"), keep: false)!.Value.Field.ShouldBe("event_type");
        Parse(parser, Event("'event_type':'buy','order':{'total':1e400}"), keep: false)!.Value.Field.ShouldBe("order.total");
        Parse(parser, Event("'event_type':'buy','order':{'total':'1'}"), keep: false)!.Value.Field.ShouldBe("order.total");
        Parse(parser, Event("'event_type':'view','items':[{'sku':'A','qty':2},{'sku':'B'}]"), keep: false)!.Value.Field.ShouldBe("items[1].qty");
        Parse(parser, Event("'event_type':'view','items':[{'sku':'A','qty':'2'}]"), keep: false)!.Value.Field.ShouldBe("items[0].qty");
        parser.Flush()[1].Count.ShouldBe(0, "validating keeps no rows");
        Parse(parser, Event(@"'event_type':'vi\u0065w','items':[{'sku':'A','qty':2}]")).ShouldBeNull();
        var kept = parser.Flush();
        kept[0].Strings(kept[0].Schema.IndexOf("event_type"))[0].ShouldBe("view");
        kept[1].Column<long>(kept[1].Schema.IndexOf("qty")).ShouldBe([2L]);
    }

    [Fact]
    public void Nested_objects_flatten_to_prefixed_columns_and_arrays_to_child_rows_keyed_by_the_parent()
    {
        var shape = Shape();
        shape.Main.Fields.Select(f => f.Name).ShouldBe(["tenant_id", "schema_version", "event_id", "event_type", "ts", "customer_email", "order_total", "session_device", "received_at", "_offset"]);
        var parser = new EventParser(shape, new PiiHasher([1, 2, 3]));
        Parse(parser, """{"event_id":"e1","schema_version":2,"event_type":"buy","ts":"2025-03-04T05:06:07.5Z","customer":{"email":"a@b.c","unknown":{"x":1}},"order":{"total":9.5},"session":{"device":"ios"},"items":[{"sku":"A","qty":2},{"sku":"B","qty":1}],"extra":[1,2]}""").ShouldBeNull();
        var tables = parser.Flush();
        var main = tables[0];
        main.Count.ShouldBe(1);
        main.Strings(shape.Main.IndexOf("tenant_id"))[0].ShouldBe("t1");
        main.Column<long>(shape.Main.IndexOf("schema_version"))[0].ShouldBe(2);
        main.Column<DateTime>(shape.Main.IndexOf("ts"))[0].ShouldBe(new DateTime(2025, 3, 4, 5, 6, 7, 500, DateTimeKind.Utc));
        main.Column<double>(shape.Main.IndexOf("order_total"))[0].ShouldBe(9.5);
        main.Strings(shape.Main.IndexOf("session_device"))[0].ShouldBe("ios");
        main.Column<long>(shape.Main.IndexOf("_offset"))[0].ShouldBe(42);
        var email = main.Strings(shape.Main.IndexOf("customer_email"))[0]!;
        email.ShouldNotBe("a@b.c");
        email.ShouldBe(new PiiHasher([1, 2, 3]).Hash("a@b.c"));
        var items = tables[1];
        items.Schema.Table.ShouldBe("things_items");
        items.Count.ShouldBe(2);
        items.Strings(items.Schema.IndexOf("event_id")).ShouldBe(["e1", "e1"]);
        items.Column<long>(items.Schema.IndexOf("_index")).ShouldBe([0L, 1L]);
        items.Column<long>(items.Schema.IndexOf("qty")).ShouldBe([2L, 1L]);
        items.Column<DateTime>(items.Schema.IndexOf("ts"))[0].ShouldBe(new DateTime(2025, 3, 4, 5, 6, 7, 500, DateTimeKind.Utc));
    }

    [Fact]
    public void Version_1_ignores_what_only_version_2_declares()
    {
        var shape = Shape();
        var parser = new EventParser(shape, null);
        Parse(parser, """{"event_id":"e1","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z","session":{"device":"ios"}}""").ShouldBeNull();
        parser.Flush()[0].Strings(shape.Main.IndexOf("session_device"))[0].ShouldBeNull();
    }

    [Theory]
    [InlineData("""{"event_id":"e","schema_version":3,"event_type":"view","ts":"2025-03-04T05:06:07Z"}""", "schema_version", "unknown schema version 3 (accepted: 1, 2)")]
    [InlineData("""{"event_id":"e","event_type":"view","ts":"2025-03-04T05:06:07Z"}""", "schema_version", "missing required field")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"sell","ts":"2025-03-04T05:06:07Z"}""", "event_type", "'sell' is not one of view, buy")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"buy","ts":"2025-03-04T05:06:07Z"}""", "order.total", "required when event_type=buy")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"view","ts":"yesterday"}""", "ts", "unparsable timestamp 'yesterday'")]
    [InlineData("""{"event_id":7,"schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z"}""", "event_id", "expected text, got number 7")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z","customer":"x"}""", "customer", "expected an object")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z","items":[{"sku":"A","qty":1},{"sku":"B"}]}""", "items[1].qty", "missing required field")]
    [InlineData("""{"event_id":"e","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z","items":[{"sku":"A","qty":1.5}]}""", "items[0].qty", "expected a whole number")]
    [InlineData("""{"schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z"}""", "event_id", "missing required field")]
    [InlineData("""[1]""", null, "an event is a JSON object")]
    [InlineData("""{"event_id":"e", """, null, "malformed JSON")]
    public void Invalid_events_name_the_field_and_the_reason_and_leave_no_row(string json, string? field, string message)
    {
        var parser = new EventParser(Shape(), null);
        var problem = Parse(parser, json);
        problem.ShouldNotBeNull();
        problem.Value.Field.ShouldBe(field);
        problem.Value.Message.ShouldContain(message);
        var tables = parser.Flush();
        tables[0].Count.ShouldBe(0);
        tables[1].Count.ShouldBe(0);
    }

    [Fact]
    public void The_tenant_an_event_names_is_reported_even_when_the_event_is_invalid()
    {
        var parser = new EventParser(Shape(), null);
        Parse(parser, """{"event_type":"nope","tenant_id":"other","event_id":"e"}""", keep: false).ShouldNotBeNull();
        parser.LastTenant.ShouldBe("other");
        parser.Parse(Encoding.UTF8.GetBytes("""{"event_id":"e","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z"}"""), "t", default, 0, false, out var parsed).ShouldBeNull();
        parsed.KeyHash.ShouldBe(DedupIndex.Hash("t", "e"));
        parsed.Version.ShouldBe(1);
        parser.LastTenant.ShouldBeNull();
        parser.Parse(Encoding.UTF8.GetBytes("""{"tenant_id":"\u0074"}"""), "t", default, 0, false, out _);
        parser.LastTenant.ShouldBe("t");
        parser.Parse(Encoding.UTF8.GetBytes("""{"tenant_id":"t2"}"""), "t", default, 0, false, out _);
        parser.LastTenant.ShouldBe("t2");
    }

    [Fact]
    public void Text_is_kept_as_utf8_unescaped_with_its_nulls_and_pii_hashed_from_the_bytes()
    {
        var shape = Shape();
        shape.Utf8[shape.Main.IndexOf("event_id")].ShouldBeTrue();
        shape.Utf8[shape.Main.IndexOf("event_type")].ShouldBeFalse("an enumeration keeps its shared strings");
        shape.Utf8[shape.Main.IndexOf("tenant_id")].ShouldBeFalse();
        var hasher = new PiiHasher([1, 2, 3]);
        var parser = new EventParser(shape, hasher);
        Parse(parser, """{"event_id":"a\"b\u00e9\/","schema_version":2,"event_type":"view","ts":"2025-03-04T05:06:07Z","customer":{"email":"gr\u00fc\u00dfe@b.c"},"items":[{"sku":"A","qty":1}]}""").ShouldBeNull();
        Parse(parser, """{"event_id":"","schema_version":2,"event_type":"view","ts":"2025-03-04T05:06:07Z","session":{"device":"東京"}}""").ShouldBeNull();
        Parse(parser, """{"event_id":"bad","schema_version":2,"event_type":"nope","ts":"2025-03-04T05:06:07Z","session":{"device":"left behind"}}""").ShouldNotBeNull();
        Parse(parser, """{"event_id":"e3","schema_version":1,"event_type":"view","ts":"2025-03-04T05:06:07Z","customer":{"email":"a@b.c"}}""").ShouldBeNull();
        var tables = parser.Flush();
        var main = tables[0];
        var ids = main.Text(shape.Main.IndexOf("event_id"));
        ids.ShouldNotBeNull();
        ids.Value(0).ToArray().ShouldBe(Encoding.UTF8.GetBytes("a\"bé/"));
        main.Strings(shape.Main.IndexOf("event_id")).ShouldBe(["a\"bé/", "", "e3"]);
        main.Strings(shape.Main.IndexOf("session_device")).ShouldBe([null, "東京", null]);
        main.Strings(shape.Main.IndexOf("customer_email")).ShouldBe([hasher.Hash("grüße@b.c"), null, hasher.Hash("a@b.c")]);
        tables[1].Text(tables[1].Schema.IndexOf("event_id")).ShouldNotBeNull();
        tables[1].Strings(tables[1].Schema.IndexOf("event_id")).ShouldBe(["a\"bé/"]);
    }

    [Fact]
    public void Child_rows_go_straight_to_their_table_and_leave_it_again_with_an_event_that_is_not_kept()
    {
        // v2's items add a colour (v1 events drop it) and a PII note (hashed); the SKU is in both, so it is UTF-8.
        EventField[] v1Items = [new("sku", FieldType.String, true, false, null, null), new("qty", FieldType.Integer, true, false, null, null)];
        EventField[] v2Items = [.. v1Items, new("colour", FieldType.String, false, false, null, null), new("note", FieldType.String, false, true, null, null)];
        var shape = new StreamShape(new HttpIngestOptions
        {
            Stream = "things", Table = "things", TimeField = "ts", DedupKey = "event_id",
            Versions =
            [
                new EventSchemaVersion(1, "v1.yaml", Common, [new EventChild("items", "things_items", false, v1Items)]),
                new EventSchemaVersion(2, "v2.yaml", Common, [new EventChild("items", "things_items", false, v2Items)]),
            ],
        });
        var hasher = new PiiHasher([4, 5, 6]);
        var parser = new EventParser(shape, hasher);
        static string Event(string id, int version, string items, string type = "view") =>
            $"{{\"items\":[{items}],\"event_id\":\"{id}\",\"schema_version\":{version},\"event_type\":\"{type}\",\"ts\":\"2025-03-04T05:06:07Z\"}}".Replace('\'', '"');
        Parse(parser, Event("a", 2, "{'sku':'S1','qty':1,'colour':'red','note':'n@x'},{'sku':'S2','qty':2}")).ShouldBeNull();
        Parse(parser, Event("bad", 2, "{'sku':'S3','qty':3}", type: "sell")).ShouldNotBeNull("read after its items");
        Parse(parser, Event("b", 1, "{'sku':'S4','qty':4,'colour':'blue'}")).ShouldBeNull();
        parser.ParsePending(Encoding.UTF8.GetBytes(Event("refused", 1, "{'sku':'S5','qty':5}")), "t1", keep: true, out _).ShouldBeNull();
        parser.AbortPending();
        parser.Parse(Encoding.UTF8.GetBytes(Event("checked", 2, "{'sku':'S6','qty':6}")), "t1", default, 7, keep: false, out _).ShouldBeNull();
        Parse(parser, Event("c", 2, "{'sku':'S7'}")).ShouldNotBeNull("a required child field is missing");
        Parse(parser, Event("d", 2, "{'sku':'S8','qty':8}")).ShouldBeNull();

        var items = parser.Flush()[1];
        int Col(string name) => items.Schema.IndexOf(name);
        items.Text(Col("sku")).ShouldNotBeNull();
        items.Text(Col("event_id")).ShouldNotBeNull();
        items.Text(Col("colour")).ShouldBeNull("not every version declares it");
        items.Strings(Col("sku")).ShouldBe(["S1", "S2", "S4", "S8"]);
        items.Strings(Col("event_id")).ShouldBe(["a", "a", "b", "d"]);
        items.Strings(Col("tenant_id")).ShouldBe(["t1", "t1", "t1", "t1"]);
        items.Column<long>(Col("_index")).ShouldBe([0L, 1L, 0L, 0L]);
        items.Column<long>(Col("qty")).ShouldBe([1L, 2L, 4L, 8L]);
        items.Strings(Col("colour")).ShouldBe(["red", null, null, null], "version 1 does not declare a colour");
        items.Strings(Col("note")).ShouldBe([hasher.Hash("n@x"), null, null, null]);
        items.Column<long>(Col("_offset")).ShouldBe([42L, 42L, 42L, 42L]);
        items.Column<DateTime>(Col("ts")).ShouldAllBe(t => t == new DateTime(2025, 3, 4, 5, 6, 7, DateTimeKind.Utc));
    }

    [Fact]
    public void Property_names_that_share_their_length_and_first_bytes_reach_their_own_columns()
    {
        // Names are matched by length and their first eight bytes as a number: these differ only after the eighth
        // byte, or (shorter than eight) only in a byte both halves of that number cover.
        string[] names = ["abcdefgh1", "abcdefgh2", "abcde", "abcdf", "bbcde", "ab", "ba", "a", "abcdefgh", "abcdefgi", "ts", "event_id"];
        var fields = names.Where(n => n is not "ts" and not "event_id").Select(n => new EventField(n, FieldType.Integer, false, false, null, null)).ToList();
        var shape = new StreamShape(new HttpIngestOptions
        {
            Stream = "names", Table = "names", TimeField = "ts",
            Versions = [new EventSchemaVersion(1, "v1.yaml", [new("event_id", FieldType.String, true, false, null, null), new("ts", FieldType.Timestamp, true, false, null, null), .. fields], [])],
        });
        var parser = new EventParser(shape, null);
        var json = "{\"event_id\":\"e\",\"schema_version\":1,\"ts\":\"2025-03-04T05:06:07Z\"," + string.Join(",", fields.Select((f, i) => $"\"{f.Path}\":{i + 1}")) + ",\"abcdefgh3\":99,\"abcdg\":98}";
        Parse(parser, json).ShouldBeNull();
        var batch = parser.Flush()[0];
        for (var i = 0; i < fields.Count; i++)
        {
            batch.Column<long>(shape.Main.IndexOf(fields[i].Column))[0].ShouldBe(i + 1, fields[i].Path);
        }
    }

    [Fact]
    public void A_pii_hash_of_utf8_bytes_is_the_hash_of_their_text()
    {
        var hasher = new PiiHasher([9, 8, 7]);
        foreach (var value in new[] { "a@b.c", "grüße@b.c", "", new string('x', 600) })
        {
            Encoding.ASCII.GetString(hasher.Hash(Encoding.UTF8.GetBytes(value))).ShouldBe(hasher.Hash(value));
            hasher.Hash(Encoding.UTF8.GetBytes(value)).ShouldBe(hasher.Hash(Encoding.UTF8.GetBytes(value)), "a cached answer is the same answer");
        }

        hasher.Hash("a"u8).ShouldNotBe(hasher.Hash("b"u8));
    }

    [Fact]
    public void Invalid_utf8_is_rejected_with_its_position()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"event_id":"e""").Concat(new byte[] { 0xFF }).Concat(Encoding.UTF8.GetBytes("\"}")).ToArray();
        var problem = new EventParser(Shape(), null).Parse(bytes, "t", default, 0, false, out _);
        problem!.Value.Message.ShouldBe("not valid UTF-8 (first bad byte at 15)");
    }
}
