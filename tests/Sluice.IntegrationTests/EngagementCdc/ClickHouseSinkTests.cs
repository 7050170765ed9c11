using Sluice.Connectors.ClickHouse;
using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>The ClickHouse sink's RowBinary inserts against the real server: every type, NULLs, and a column of another type.</summary>
public sealed class ClickHouseSinkTests
{
    private static readonly TableSchema Schema = new("typed",
    [
        new FieldSpec("ts", FieldType.Timestamp, false), new FieldSpec("id", FieldType.Integer, false), new FieldSpec("amount", FieldType.Double, false),
        new FieldSpec("flag", FieldType.Boolean, false), new FieldSpec("day", FieldType.Date, false), new FieldSpec("name", FieldType.String, false),
        new FieldSpec("count", FieldType.Integer, false), new FieldSpec("_lsn", FieldType.Integer, false),
    ]);

    [Fact]
    public async Task Every_type_and_NULL_round_trips_and_missing_sorting_keys_become_zero()
    {
        var database = $"t_rowbinary_{Guid.NewGuid():N}"[..24];
        using var engine = new Engine();
        await using var sink = Sink(engine, database);
        var ts = new DateTime(2026, 11, 23, 18, 30, 5, DateTimeKind.Utc);
        var longText = string.Concat(Enumerable.Repeat("é✓", 300)); // 1,500 UTF-8 bytes (length() counts bytes): a two-byte length prefix
        var rows = new ColumnBatch(Schema,
        [
            new DateTime?[] { ts, null },
            new long?[] { 1, null },
            new double?[] { 2.5, double.NaN },
            new bool?[] { true, null },
            new DateOnly?[] { new DateOnly(2026, 11, 23), null },
            new string?[] { longText, null },
            new long?[] { -7, null },
            new long?[] { 100, 101 },
        ], 2);

        await sink.WriteAsync(new RecordBatch(rows, 1), "unused", CancellationToken.None);

        var text = await QueryAsync(
            $"SELECT toUnixTimestamp(ts), id, ifNull(toString(amount), 'NULL'), ifNull(toString(flag), 'NULL'), ifNull(toString(day), 'NULL'), " +
            $"ifNull(toString(length(name)), 'NULL'), ifNull(toString(count), 'NULL'), _lsn FROM {database}.typed ORDER BY _lsn FORMAT TabSeparated");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldBe($"{new DateTimeOffset(ts).ToUnixTimeSeconds()}\t1\t2.5\t1\t2026-11-23\t{System.Text.Encoding.UTF8.GetByteCount(longText)}\t-7\t100");
        // Float64 holds NaN: it is stored as it is, never as NULL in its place.
        lines[1].ShouldBe("0\t0\tnan\tNULL\tNULL\tNULL\tNULL\t101");
        (await QueryAsync($"SELECT name FROM {database}.typed WHERE _lsn = 100")).ShouldBe(longText);
        await QueryAsync($"DROP DATABASE {database}");
    }

    [Fact]
    public async Task A_column_of_another_type_stops_the_sink_with_both_types_named()
    {
        var database = $"t_rowbinary_{Guid.NewGuid():N}"[..24];
        await QueryAsync($"CREATE DATABASE {database}");
        await QueryAsync($"CREATE TABLE {database}.typed (ts DateTime, id Int64, _lsn UInt64, count String) ENGINE = ReplacingMergeTree(_lsn) ORDER BY (ts, id)");
        using var engine = new Engine();
        await using var sink = Sink(engine, database);
        var rows = new ColumnBatch(new TableSchema("typed", [Schema.Fields[0], Schema.Fields[1], Schema.Fields[6], Schema.Fields[7]]),
            [new DateTime?[] { DateTime.UtcNow }, new long?[] { 1 }, new long?[] { 5 }, new long?[] { 1 }], 1);

        var error = await Should.ThrowAsync<SluiceException>(() => sink.WriteAsync(new RecordBatch(rows, 1), "unused", CancellationToken.None));

        error.Message.ShouldContain($"column count of {database}.typed is String, but the batch's count is integer, written as Nullable(Int64)");
        (await QueryAsync($"SELECT count() FROM {database}.typed")).ShouldBe("0");
        await QueryAsync($"DROP DATABASE {database}");
    }

    private static ClickHouseSink Sink(Engine engine, string database) => new(engine.Services, new ClickHouseOptions
    {
        Url = new Uri(ServerSettings.ClickHouseUrl),
        Database = database,
        Table = "typed",
        OrderBy = ["ts", "id"],
        RetryMaxDelay = TimeSpan.FromMilliseconds(200),
    });

    private static async Task<string> QueryAsync(string sql)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync(new Uri(ServerSettings.ClickHouseUrl), new StringContent(sql));
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.ShouldBeTrue($"ClickHouse: {body}");
        return body.TrimEnd('\n');
    }
}
