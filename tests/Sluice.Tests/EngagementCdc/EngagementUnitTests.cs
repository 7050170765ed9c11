using System.Net;
using Microsoft.Extensions.Time.Testing;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Http;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using Sluice.Core.Config;
using Sluice.Core.Schema;
using Sluice.Recipes.Engagement;

namespace Sluice.Tests.EngagementCdc;

public sealed class EngagementUnitTests
{
    [Theory]
    [InlineData("2026-01-08 14:21:52.123456+00", "2026-01-08T14:21:52.1234560Z")]
    [InlineData("2026-01-08 14:21:52+00", "2026-01-08T14:21:52.0000000Z")]
    [InlineData("2026-01-08 16:21:52.5+02", "2026-01-08T14:21:52.5000000Z")]
    [InlineData("2026-01-08 09:51:52-04:30", "2026-01-08T14:21:52.0000000Z")]
    [InlineData("2026-01-08 14:21:52", "2026-01-08T14:21:52.0000000Z")]
    public void Postgres_text_timestamps_are_read_as_utc(string text, string expected)
    {
        PgTypes.TryTimestamp(text, out var utc).ShouldBeTrue();
        utc.Kind.ShouldBe(DateTimeKind.Utc);
        utc.ToString("O", System.Globalization.CultureInfo.InvariantCulture).ShouldBe(expected);
    }

    [Fact]
    public void Postgres_text_values_that_do_not_fit_their_type_are_refused()
    {
        PgTypes.TryTimestamp("not a time", out _).ShouldBeFalse();
        var builder = new ColumnBatchBuilder(new TableSchema("t", [new FieldSpec("n", FieldType.Integer, false)]));
        PgTypes.Set(builder[0], FieldType.Integer, "12x").ShouldBeFalse();
        PgTypes.Set(builder[0], FieldType.Integer, "-12").ShouldBeTrue();
        builder.CommitRow();
        builder.Flush().Value(0, 0).ShouldBe(-12L);
    }

    [Theory]
    [InlineData(FieldType.Integer, "-42", -42L)]
    [InlineData(FieldType.Double, "1.5e3", 1500.0)]
    [InlineData(FieldType.Boolean, "t", true)]
    [InlineData(FieldType.String, "héllo", "héllo")]
    public void Raw_utf8_values_parse_like_their_text(FieldType type, string text, object expected)
    {
        var builder = new ColumnBatchBuilder(new TableSchema("t", [new FieldSpec("v", type, false)]));
        PgTypes.Set(builder[0], type, System.Text.Encoding.UTF8.GetBytes(text)).ShouldBeTrue();
        builder.CommitRow();
        builder.Flush().Value(0, 0).ShouldBe(expected);
    }

    [Fact]
    public void Raw_utf8_timestamps_and_bad_numbers()
    {
        var builder = new ColumnBatchBuilder(new TableSchema("t", [new FieldSpec("ts", FieldType.Timestamp, false), new FieldSpec("n", FieldType.Integer, false)]));
        PgTypes.Set(builder[0], FieldType.Timestamp, "2026-01-08 14:21:52.5+00"u8).ShouldBeTrue();
        PgTypes.Set(builder[1], FieldType.Integer, "12x"u8).ShouldBeFalse();
        builder.CommitRow();
        var batch = builder.Flush();
        batch.Value(0, 0).ShouldBe(new DateTime(2026, 1, 8, 14, 21, 52, 500, DateTimeKind.Utc));
        batch.Value(1, 0).ShouldBeNull();
    }

    [Theory]
    [InlineData("2026-01-08 14:21:52+00")]
    [InlineData("2026-01-08 14:21:52.123456+00")]
    [InlineData("0001-01-01 00:00:00+00")]
    [InlineData("2026-01-08 16:21:52.5+02")]
    [InlineData("2026-01-08 09:51:52-04:30")]
    public void Raw_utf8_timestamps_read_as_their_text_does(string text)
    {
        var builder = new ColumnBatchBuilder(new TableSchema("t", [new FieldSpec("ts", FieldType.Timestamp, false)]));
        PgTypes.Set(builder[0], FieldType.Timestamp, System.Text.Encoding.UTF8.GetBytes(text)).ShouldBeTrue();
        builder.CommitRow();
        PgTypes.TryTimestamp(text, out var expected).ShouldBeTrue();
        var read = (DateTime)builder.Flush().Value(0, 0)!;
        read.ShouldBe(expected);
        read.Kind.ShouldBe(DateTimeKind.Utc);
    }

    [Fact]
    public void Enrichment_joins_content_and_derives_the_metrics_with_nulls_where_inputs_are_missing()
    {
        var step = new EngagementEnrichStep(new EngagementEnrichOptions { Connection = PostgresConnectionOptions.FromEnvironment(), Fields = ["content_type", "length_seconds"] });
        step.Prepare([FieldType.String, FieldType.Integer]);
        var content = Batch("content", [("content_id", FieldType.Integer), ("content_type", FieldType.String), ("length_seconds", FieldType.Integer)],
            [1L, "video", 300L], [2L, "article", 0L], [3L, "podcast", null]);
        step.Cache.Apply(content);
        var events = Batch("engagement_events", [("event_id", FieldType.Integer), ("content_id", FieldType.Integer), ("duration_ms", FieldType.Integer), ("_op", FieldType.String)],
            [10L, 1L, 7000L, "c"], [11L, 1L, null, "c"], [12L, 2L, 5000L, "c"], [13L, 3L, 5000L, "c"], [14L, 42L, 5000L, "c"], [15L, 1L, 1000L, "d"], [16L, null, 100L, "c"], [17L, 1L, 1500L, "c"]);

        var enriched = step.Enrich(events);

        enriched.Schema.Table.ShouldBe("events_enriched");
        enriched.Count.ShouldBe(7); // the delete is not passed on
        var id = Column<long>(enriched, "event_id");
        var seconds = Column<double>(enriched, "engagement_seconds");
        var pct = Column<double>(enriched, "engagement_pct");
        var type = enriched.Strings(enriched.Schema.IndexOf("content_type"));
        id.ShouldBe(new long?[] { 10, 11, 12, 13, 14, 16, 17 });
        seconds.ShouldBe(new double?[] { 7.0, null, 5.0, 5.0, 5.0, 0.1, 1.5 });
        pct.ShouldBe(new double?[] { 0.02, null, null, null, null, null, 0.01 }); // 1.5/300 = 0.005 rounds half away from zero
        type.ShouldBe(new[] { "video", "video", "article", "podcast", null, null, "video" });
        step.UnknownDimensionRows.ShouldBe(2);
        enriched.Schema.Fields.Select(f => f.Name).ShouldBe(["event_id", "content_id", "duration_ms", "content_type", "length_seconds", "engagement_seconds", "engagement_pct", "_op"]);
    }

    [Fact]
    public void A_content_update_in_the_stream_applies_to_later_events_and_a_delete_forgets_the_row()
    {
        var step = new EngagementEnrichStep(new EngagementEnrichOptions { Connection = PostgresConnectionOptions.FromEnvironment(), Fields = ["content_type", "length_seconds"] });
        step.Prepare([FieldType.String, FieldType.Integer]);
        var schema = new (string, FieldType)[] { ("content_id", FieldType.Integer), ("content_type", FieldType.String), ("length_seconds", FieldType.Integer), ("_op", FieldType.String) };
        step.Cache.Apply(Batch("content", schema, [1L, "video", 100L, "r"]));
        var events = new (string, FieldType)[] { ("event_id", FieldType.Integer), ("content_id", FieldType.Integer), ("duration_ms", FieldType.Integer) };
        Column<double>(step.Enrich(Batch("engagement_events", events, [1L, 1L, 50_000L])), "engagement_pct").ShouldBe(new double?[] { 0.5 });

        step.Cache.Apply(Batch("content", schema, [1L, "video", 200L, "u"]));
        Column<double>(step.Enrich(Batch("engagement_events", events, [2L, 1L, 50_000L])), "engagement_pct").ShouldBe(new double?[] { 0.25 });

        step.Cache.Apply(Batch("content", schema, [1L, null, null, "d"]));
        Column<double>(step.Enrich(Batch("engagement_events", events, [3L, 1L, 50_000L])), "engagement_pct").ShouldBe(new double?[] { null });
        step.UnknownDimensionRows.ShouldBe(1);
    }

    [Fact]
    public void The_content_cache_keeps_a_value_marked_unchanged_and_a_truncate_empties_it()
    {
        var step = new EngagementEnrichStep(new EngagementEnrichOptions { Connection = PostgresConnectionOptions.FromEnvironment(), Fields = ["length_seconds", "title"] });
        step.Prepare([FieldType.Integer, FieldType.String]);
        var schema = new (string, FieldType)[] { ("content_id", FieldType.Integer), ("length_seconds", FieldType.Integer), ("title", FieldType.String), ("_op", FieldType.String), ("_unchanged", FieldType.String) };
        step.Cache.Apply(Batch("content", schema, [1L, 100L, "a long title", "r", null]));

        step.Cache.Apply(Batch("content", schema, [1L, 200L, null, "u", "[\"title\"]"]));
        step.Cache.Find("1").ShouldBe([200L, "a long title"]);
        step.Cache.Apply(Batch("content", schema, [1L, 300L, null, "u", null]));
        step.Cache.Find("1").ShouldBe([300L, null]);

        step.Cache.Apply(Batch("content", schema, [null, null, null, "t", null]));
        step.Cache.Count.ShouldBe(0);
    }

    [Fact]
    public void Row_json_leaves_out_a_column_marked_unchanged_and_keeps_a_null_one()
    {
        var schema = new (string, FieldType)[] { ("id", FieldType.Integer), ("title", FieldType.String), ("note", FieldType.String), ("_unchanged", FieldType.String) };
        var table = Batch("t", schema, [1L, null, null, "[\"title\"]"], [2L, null, null, null]);
        System.Text.Encoding.UTF8.GetString(RowJson.ToUtf8(table, 0)).ShouldBe("{\"id\":1,\"note\":null}");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer)) { RowJson.WriteArray(json, table, 0, 2); }
        System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan).ShouldBe("[{\"id\":1,\"note\":null},{\"id\":2,\"title\":null,\"note\":null}]");
    }

    [Fact]
    public async Task The_rate_limit_lets_a_burst_through_then_spaces_requests_on_the_clock()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucket(ratePerSecond: 2, burst: 3, time);
        for (var i = 0; i < 3; i++) { bucket.TryTake(out _).ShouldBeTrue(); }
        bucket.TryTake(out var wait).ShouldBeFalse();
        wait.ShouldBe(TimeSpan.FromMilliseconds(500));

        var taking = bucket.TakeAsync(CancellationToken.None).AsTask();
        taking.IsCompleted.ShouldBeFalse();
        time.Advance(TimeSpan.FromMilliseconds(499));
        taking.IsCompleted.ShouldBeFalse();
        time.Advance(TimeSpan.FromMilliseconds(1));
        await taking.WaitAsync(TimeSpan.FromSeconds(5));
        bucket.TryTake(out _).ShouldBeFalse();
    }

    [Fact]
    public void Retry_After_is_honoured_in_seconds_or_as_a_date_and_capped()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 8, 12, 0, 0, TimeSpan.Zero));
        using var seconds = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        seconds.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(3));
        HttpSink.RetryAfter(seconds, time, TimeSpan.FromSeconds(10)).ShouldBe(TimeSpan.FromSeconds(3));
        using var date = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        date.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(time.GetUtcNow().AddMinutes(5));
        HttpSink.RetryAfter(date, time, TimeSpan.FromSeconds(10)).ShouldBe(TimeSpan.FromSeconds(10));
        using var none = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        HttpSink.RetryAfter(none, time, TimeSpan.FromSeconds(10)).ShouldBeNull();
    }

    [Fact]
    public void Redis_urls_carry_host_port_password_and_database()
    {
        var options = RedisUrl.Parse("redis://:secret@127.0.0.1:63799/3");
        options.EndPoints.Single().ToString()!.ShouldContain("63799");
        options.Password.ShouldBe("secret");
        options.DefaultDatabase.ShouldBe(3);
        Should.Throw<FormatException>(() => RedisUrl.Parse("http://127.0.0.1:6379"));
    }

    [Fact]
    public void Rows_as_JSON_skip_pipeline_columns_and_write_fixed_width_UTC_times()
    {
        var schema = new TableSchema("t", [new FieldSpec("id", FieldType.Integer, false), new FieldSpec("ts", FieldType.Timestamp, false),
            new FieldSpec("pct", FieldType.Double, false), new FieldSpec("name", FieldType.String, false), new FieldSpec("_lsn", FieldType.Integer, false)]);
        var table = new ColumnBatch(schema, [new long?[] { 1, 2 }, new DateTime?[] { new DateTime(2026, 1, 8, 14, 21, 52, DateTimeKind.Utc), null },
            new double?[] { 0.02, double.NaN }, new string?[] { "a\"b", null }, new long?[] { 9, 9 }], 2);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer)) { RowJson.WriteArray(json, table, 0, 2); }

        System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan).ShouldBe(
            "[{\"id\":1,\"ts\":\"2026-01-08T14:21:52.000000Z\",\"pct\":0.02,\"name\":\"a\\u0022b\"},{\"id\":2,\"ts\":null,\"pct\":null,\"name\":null}]");
        System.Text.Encoding.UTF8.GetString(RowJson.ToUtf8(table, 0)).ShouldBe("{\"id\":1,\"ts\":\"2026-01-08T14:21:52.000000Z\",\"pct\":0.02,\"name\":\"a\\u0022b\"}");
    }

    [Fact]
    public void Environment_references_in_options_expand_with_fallbacks()
    {
        Environment.SetEnvironmentVariable("SLUICE_TEST_EXPAND", "db1");
        EnvText.Expand("${SLUICE_TEST_EXPAND:-x}/${SLUICE_TEST_UNSET_VAR:-fallback}").ShouldBe("db1/fallback");
        Environment.SetEnvironmentVariable("SLUICE_TEST_EXPAND", null);
    }

    private static ColumnBatch Batch(string table, (string Name, FieldType Type)[] fields, params object?[][] rows)
    {
        var builder = new ColumnBatchBuilder(new TableSchema(table, fields.Select(f => new FieldSpec(f.Name, f.Type, false)).ToList()));
        foreach (var row in rows)
        {
            for (var c = 0; c < fields.Length; c++)
            {
                switch (row[c])
                {
                    case null: break;
                    case long l: ((ValueColumnBuilder<long>)builder[c]).Set(l); break;
                    case string s: ((TypedColumnBuilder<string>)builder[c]).Set(s); break;
                    default: throw new ArgumentException("unsupported test value");
                }
            }

            builder.CommitRow();
        }

        return builder.Flush();
    }

    private static T?[] Column<T>(ColumnBatch batch, string name) where T : struct => batch.Column<T>(batch.Schema.IndexOf(name));

    [Fact]
    public void ClickHouse_insert_joining_defaults_to_300ms_and_refuses_a_linger_past_a_second()
    {
        var errors = new ConfigErrors();
        var defaults = ClickHouseOptions.Parse(ConfigMap.Parse("table: t\norder_by: [id]\n", "r.yaml", errors)!);
        defaults.InsertLinger.ShouldBe(TimeSpan.FromMilliseconds(300));
        defaults.InsertMaxRows.ShouldBe(100_000);
        errors.Any.ShouldBeFalse();

        ClickHouseOptions.Parse(ConfigMap.Parse("table: t\norder_by: [id]\ninsert_linger: 2s\ninsert_max_rows: 0\n", "r.yaml", errors)!);

        errors.All.Select(e => e.ToString()).ShouldBe([
            "r.yaml:3: insert_linger: clickhouse: must be between 0 and 1s (rows must reach ClickHouse within a second), got 2000ms",
            "r.yaml:4: insert_max_rows: must be between 1 and 2147483647, got 0",
        ], ignoreOrder: true);
    }

    [Fact]
    public void ClickHouse_mirror_prunes_hourly_by_default_and_prune_every_is_refused_on_a_change_log_or_negative()
    {
        var errors = new ConfigErrors();
        ClickHouseOptions.Parse(ConfigMap.Parse("table: t\nmode: mirror\n", "r.yaml", errors)!).PruneEvery.ShouldBe(TimeSpan.FromHours(1));
        ClickHouseOptions.Parse(ConfigMap.Parse("table: t\nmode: mirror\nprune_every: 0s\n", "r.yaml", errors)!).PruneEvery.ShouldBe(TimeSpan.Zero);
        errors.Any.ShouldBeFalse();

        ClickHouseOptions.Parse(ConfigMap.Parse("table: t\norder_by: [id]\nprune_every: 10m\n", "r.yaml", errors)!);
        ClickHouseOptions.Parse(ConfigMap.Parse("table: t\nmode: mirror\nprune_every: -1s\n", "s.yaml", errors)!);

        errors.All.Select(e => e.ToString()).ShouldBe([
            "r.yaml:3: prune_every: clickhouse: used with mode: mirror only (a change log keeps every row); remove it",
            "s.yaml:3: prune_every: expected a duration such as 500ms, 2s, 5m, 1h, 30d or P30D, got '-1s'",
        ], ignoreOrder: true);
    }

    [Fact]
    public void Pgoutput_relation_and_tuples_are_read_from_the_message_bytes()
    {
        // Relation 16385 public.content (content_id int8, title text), then an update with its old key and new row.
        var relation = PgMessages.Message('R', w =>
        {
            w.UInt32(16385); w.CString("public"); w.CString("content"); w.Byte((byte)'d'); w.Int16(2);
            w.Byte(1); w.CString("content_id"); w.UInt32(20); w.UInt32(uint.MaxValue);
            w.Byte(0); w.CString("title"); w.UInt32(25); w.UInt32(uint.MaxValue);
        });
        var update = PgMessages.Message('U', w =>
        {
            w.UInt32(16385);
            w.Byte((byte)'K'); w.Int16(2); w.Text("7"); w.Byte((byte)'n');
            w.Byte((byte)'N'); w.Int16(2); w.Text("7"); w.Byte((byte)'u');
        });

        var r = new PgOutputMessage(relation);
        r.Kind.ShouldBe('R');
        var read = r.Relation();
        read.ShouldBe(new PgOutputRelation(16385, "public", "content", read.Columns));
        read.Columns.ShouldBe([new PgOutputColumn("content_id", 20, -1), new PgOutputColumn("title", 25, -1)]);

        var u = new PgOutputMessage(update);
        u.Kind.ShouldBe('U');
        u.UInt32().ShouldBe(16385u);
        ((char)u.Byte()).ShouldBe('K');
        u.SkipTuple();
        ((char)u.Byte()).ShouldBe('N');
        u.TupleColumns().ShouldBe(2);
        u.Value(out var id).ShouldBe(PgValueKind.Text);
        System.Text.Encoding.UTF8.GetString(id).ShouldBe("7");
        u.Value(out _).ShouldBe(PgValueKind.Unchanged);

        var commit = PgMessages.Message('C', w => { w.Byte(0); w.UInt64(0x10); w.UInt64(0x2A); w.UInt64(0); });
        PgOutputMessage.CommitEndLsn(commit).ShouldBe(0x2A);
    }

    [Fact]
    public void Row_json_timestamps_are_the_fixed_format_digit_for_digit()
    {
        var random = new Random(7);
        var samples = new[] { DateTime.MinValue, DateTime.MaxValue, new DateTime(2026, 1, 8, 14, 21, 52, DateTimeKind.Utc).AddTicks(1_234_567) }
            .Concat(Enumerable.Range(0, 2_000).Select(_ => new DateTime(random.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks), DateTimeKind.Utc)));
        foreach (var t in samples)
        {
            RowJson.Timestamp(t).ShouldBe(t.ToString(RowJson.TimestampFormat, System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
