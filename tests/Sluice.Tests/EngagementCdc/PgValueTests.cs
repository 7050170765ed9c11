using System.Text;
using System.Text.Json;
using Sluice.Connectors.Postgres;
using Sluice.Core.Schema;

namespace Sluice.Tests.EngagementCdc;

/// <summary>The decoder's value conversions: exact numerics and dates and times .NET cannot hold, kept as Postgres wrote them.</summary>
public sealed class PgValueTests
{
    [Theory]
    [InlineData(-1, 0, 0)]
    [InlineData((38 << 16 | 9) + 4, 38, 9)]
    [InlineData((1000 << 16 | 0) + 4, 1000, 0)]
    [InlineData((5 << 16 | (-2 & 0x7ff)) + 4, 0, 0)] // numeric(5,-2): no Parquet or ClickHouse decimal has it, so unbounded
    public void A_numeric_keeps_its_declared_precision_and_scale(int typmod, int precision, int scale)
    {
        var field = PgTypes.FieldOf("n", PgTypes.NumericOid, typmod);
        field.Type.ShouldBe(FieldType.Decimal);
        (field.Precision, field.Scale).ShouldBe((precision, scale));
    }

    [Theory]
    [InlineData("12345678901234567890.123456789")]
    [InlineData("-99999999999999999999999999999.999999999")]
    [InlineData("12345678901234567890123456789012345678901234.5678901234")]
    [InlineData("0.000000001")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    public void Numeric_text_is_kept_digit_for_digit_from_both_paths(string text)
    {
        var builder = Builder(FieldType.Decimal, FieldType.Decimal);
        PgTypes.Set(builder[0], FieldType.Decimal, text).ShouldBeTrue();
        PgTypes.Set(builder[1], FieldType.Decimal, Encoding.UTF8.GetBytes(text)).ShouldBeTrue();
        builder.CommitRow();
        var batch = builder.Flush();
        batch.Value(0, 0).ShouldBe(text);
        batch.Value(1, 0).ShouldBe(text);
    }

    [Theory]
    [InlineData("1e5")]
    [InlineData("12.")]
    [InlineData("abc")]
    [InlineData("")]
    public void Text_that_is_not_a_numeric_is_refused(string text) =>
        PgTypes.Set(Builder(FieldType.Decimal)[0], FieldType.Decimal, text).ShouldBeFalse();

    [Theory]
    [InlineData(FieldType.Timestamp, "infinity", "infinity")]
    [InlineData(FieldType.Timestamp, "-infinity", "-infinity")]
    [InlineData(FieldType.Timestamp, "10000-01-01 00:00:00+00", "10000-01-01 00:00:00+00")]
    [InlineData(FieldType.Timestamp, "10000-06-01 12:00:00", "10000-06-01 12:00:00+00")] // timestamp without zone: read as UTC, like the rest
    [InlineData(FieldType.Timestamp, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC")]
    [InlineData(FieldType.Timestamp, "0044-03-15 12:00:00 BC", "0044-03-15 12:00:00+00 BC")]
    [InlineData(FieldType.Date, "infinity", "infinity")]
    [InlineData(FieldType.Date, "0044-03-15 BC", "0044-03-15 BC")]
    [InlineData(FieldType.Date, "10000-01-01", "10000-01-01")]
    public void Dates_and_times_beyond_dotnet_are_carried_as_their_text_never_as_null(FieldType type, string text, string carried)
    {
        var builder = Builder(type, type);
        PgTypes.Set(builder[0], type, text).ShouldBeTrue();
        PgTypes.Set(builder[1], type, Encoding.UTF8.GetBytes(text)).ShouldBeTrue();
        builder.CommitRow();
        PgTypes.Set(builder[0], type, type == FieldType.Date ? "2026-01-08" : "2026-01-08 14:21:52+00").ShouldBeTrue();
        builder.CommitRow();
        var batch = builder.Flush();
        batch.Value(0, 0).ShouldBeNull();
        batch.Verbatim(0).ShouldBe([carried, null]);
        batch.Verbatim(1).ShouldBe([carried, null]);
        batch.Value(0, 1).ShouldNotBeNull();

        // Kept through the batch operations a pipeline applies: gathering rows, and joining pieces.
        batch.Gather([1, 0]).Verbatim(0).ShouldBe([null, carried]);
        var joined = ColumnBatchConcat.Runs([batch, batch.Gather([1])]);
        joined.ShouldHaveSingleItem().Verbatim(0).ShouldBe([carried, null, null]);
    }

    [Fact]
    public void The_json_form_has_exact_numbers_and_postgres_text_for_what_is_beyond_dotnet()
    {
        var schema = new TableSchema("t", [new FieldSpec("n", FieldType.Decimal, false, 38, 9), new FieldSpec("big", FieldType.Decimal, false), new FieldSpec("tz", FieldType.Timestamp, false), new FieldSpec("d", FieldType.Date, false)]);
        var builder = new ColumnBatchBuilder(schema);
        PgTypes.Set(builder[0], FieldType.Decimal, "12345678901234567890.123456789");
        PgTypes.Set(builder[1], FieldType.Decimal, "NaN");
        PgTypes.Set(builder[2], FieldType.Timestamp, "infinity");
        PgTypes.Set(builder[3], FieldType.Date, "0044-03-15 BC");
        builder.CommitRow();
        PgTypes.Set(builder[1], FieldType.Decimal, "12345678901234567890123456789012345678901234.5678901234");
        PgTypes.Set(builder[2], FieldType.Timestamp, "2026-01-08 14:21:52+00");
        builder.CommitRow();
        var batch = builder.Flush();

        const string First = """{"n":12345678901234567890.123456789,"big":"NaN","tz":"infinity","d":"0044-03-15 BC"}""";
        const string Second = """{"n":null,"big":12345678901234567890123456789012345678901234.5678901234,"tz":"2026-01-08T14:21:52.000000Z","d":null}""";
        Encoding.UTF8.GetString(RowJson.ToUtf8(batch, 0)).ShouldBe(First);
        Encoding.UTF8.GetString(RowJson.ToUtf8(batch, 1)).ShouldBe(Second);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer)) { RowJson.WriteArray(json, batch, 0, 2); }
        Encoding.UTF8.GetString(buffer.WrittenSpan).ShouldBe($"[{First},{Second}]");
    }

    [Fact]
    public void Far_dates_and_times_count_from_1970_as_Postgres_does_and_infinity_has_no_count()
    {
        VerbatimTime.TryEpochDays("10000-01-01", out var days).ShouldBeTrue();
        days.ShouldBe(DateOnly.MaxValue.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + 1);
        VerbatimTime.TryEpochDays("0001-12-31 BC", out days).ShouldBeTrue(); // 1 BC is year 0: the day before 0001-01-01
        days.ShouldBe(DateOnly.MinValue.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber - 1);
        VerbatimTime.TryEpochMillis("10000-01-01 00:00:01.5+00", out var ms).ShouldBeTrue();
        ms.ShouldBe((DateTime.MaxValue.Ticks + 1 - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMillisecond + 1500);
        VerbatimTime.TryEpochMillis("0001-12-31 23:00:00+00 BC", out ms).ShouldBeTrue();
        ms.ShouldBe((DateTime.MinValue.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMillisecond - 3_600_000);
        VerbatimTime.TryEpochMillis("infinity", out _).ShouldBeFalse();
        VerbatimTime.TryEpochDays("-infinity", out _).ShouldBeFalse();
    }

    [Fact]
    public void A_clickhouse_mirror_counts_microseconds_and_days_from_1970_with_the_integer_ends_for_the_infinities()
    {
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(new DateTime(2026, 1, 8, 14, 21, 52, DateTimeKind.Utc).AddTicks(1_234_560), null, out var micros).ShouldBeTrue();
        micros.ShouldBe(1_767_882_112_123_456L);
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(DateTime.UnixEpoch.AddTicks(-10), null, out micros).ShouldBeTrue();
        micros.ShouldBe(-1);
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(null, "10000-01-01 00:00:00.000001+00", out micros).ShouldBeTrue();
        micros.ShouldBe((DateTime.MaxValue.Ticks + 1 - DateTime.UnixEpoch.Ticks) / 10 + 1);
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(null, "infinity", out micros).ShouldBeTrue();
        micros.ShouldBe(long.MaxValue);
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(null, "-infinity", out micros).ShouldBeTrue();
        micros.ShouldBe(long.MinValue);
        // Postgres's last years pass an Int64 of microseconds: refused, not wrapped round.
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(null, "294270-01-01 00:00:00+00", out _).ShouldBeFalse();
        Connectors.ClickHouse.ClickHouseExactTime.TryMicros(null, null, out _).ShouldBeFalse();
        Connectors.ClickHouse.ClickHouseExactTime.TryDays(new DateOnly(1969, 12, 31), null, out var days).ShouldBeTrue();
        days.ShouldBe(-1);
        Connectors.ClickHouse.ClickHouseExactTime.TryDays(null, "0001-12-31 BC", out days).ShouldBeTrue();
        days.ShouldBe(DateOnly.MinValue.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber - 1);
        Connectors.ClickHouse.ClickHouseExactTime.TryDays(null, "infinity", out days).ShouldBeTrue();
        days.ShouldBe(int.MaxValue);
    }

    private static ColumnBatchBuilder Builder(params FieldType[] types) =>
        new(new TableSchema("t", types.Select((t, i) => new FieldSpec($"c{i}", t, false)).ToList()));
}
