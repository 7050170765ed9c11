using System.Globalization;
using Npgsql;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// The mirror sinks under replay, on the real servers: the same change batches written again (as after a crash before
/// the checkpoint), and an older batch written after newer ones, leave each mirror exactly as it was.
/// </summary>
public sealed class MirrorReplayTests
{
    private static readonly TableSchema Schema = new("r", new FieldSpec[] { new("id", FieldType.Integer, false), new("title", FieldType.String, false), new("n", FieldType.Integer, false) }.Concat(ChangeEnvelope.Fields).ToList())
    {
        Key = ["id"],
    };

    private sealed record Change(string Op, long Id, string? Title, long? N, long Lsn, long Seq, string? Unchanged = null);

    /// <summary>Inserts; an update, a delete and an update that leaves the title unchanged; a key change that leaves it unchanged; a truncate and an insert after it.</summary>
    private static readonly RecordBatch[] Batches =
    [
        Batch(10, new("c", 1, "a", 1, 10, 1), new("c", 2, "b", 2, 10, 2), new("c", 3, "toasted", 3, 10, 3)),
        Batch(20, new("u", 1, "a2", 1, 20, 1), new("d", 2, null, null, 20, 2), new("u", 3, null, 30, 20, 3, "[\"title\"]")),
        Batch(30, new("d", 3, null, null, 30, 1), new("c", 300, null, 30, 30, 2, "[\"title\"]")),
        Batch(40, new("t", 0, null, null, 40, 1), new("c", 4, "after", 4, 40, 2)),
    ];

    private const string BeforeTruncate = "1|a2|1,300|toasted|30";
    private const string AfterTruncate = "4|after|4";

    [Fact]
    public async Task The_postgres_mirror_absorbs_replayed_and_older_batches()
    {
        var schema = "replay_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        try
        {
            await using var sink = new PostgresSink(engine.Services, new PostgresSinkOptions { Connection = ServerSettings.PostgresConnectionString, Schema = schema, Mirror = true });
            async Task<string> State() => await PgScalarAsync($"SELECT coalesce(string_agg(concat_ws('|', id, coalesce(title, '~'), coalesce(n::text, '~')), ',' ORDER BY id), '') FROM {schema}.r");
            await ReplayAsync(sink, State);
        }
        finally
        {
            await PgScalarAsync($"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
    }

    /// <summary>
    /// The postgres mirror writes a batch in one round trip when it knows the table's floor (its last truncate's
    /// position) from its own last commit; a floor another writer moved meanwhile (here a second sink on the same
    /// schema: another process) must be read again, not planned against. Planned against its stale floor (none: it saw
    /// no truncate), the replayed key change at (30, 2) would bring back row 300, which the truncate at (40, 1) removed
    /// and which has no tombstone (it was never deleted).
    /// </summary>
    [Fact]
    public async Task The_postgres_mirror_reads_a_position_another_writer_moved()
    {
        var schema = "replay_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        try
        {
            var options = new PostgresSinkOptions { Connection = ServerSettings.PostgresConnectionString, Schema = schema, Mirror = true };
            await using var first = new PostgresSink(engine.Services, options);
            await using var second = new PostgresSink(engine.Services, options);
            async Task<string> State() => await PgScalarAsync($"SELECT coalesce(string_agg(concat_ws('|', id, coalesce(title, '~'), coalesce(n::text, '~')), ',' ORDER BY id), '') FROM {schema}.r");
            foreach (var batch in Batches[..3]) { await first.WriteAsync(batch, "replay", CancellationToken.None); }
            (await State()).ShouldBe(BeforeTruncate);

            await second.WriteAsync(Batches[3], "replay", CancellationToken.None);
            await second.WriteAsync(Batch(50, new Change("c", 5, "five", 5, 50, 1)), "replay", CancellationToken.None);
            (await State()).ShouldBe(AfterTruncate + ",5|five|5");

            await first.WriteAsync(Batches[2], "replay", CancellationToken.None);
            (await State()).ShouldBe(AfterTruncate + ",5|five|5");
            await first.WriteAsync(Batches[3], "replay", CancellationToken.None);
            (await State()).ShouldBe(AfterTruncate + ",5|five|5");
            (await PgScalarAsync($"SELECT concat_ws('/', lsn, seq) FROM {schema}._sluice_mirror_positions WHERE table_name = 'r'")).ShouldBe("40/1", "the floor: the last truncate's position");
        }
        finally
        {
            await PgScalarAsync($"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
    }

    [Fact]
    public async Task The_clickhouse_mirror_absorbs_replayed_and_older_batches()
    {
        var database = "replay_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        var options = new ClickHouseOptions { Url = new Uri(ServerSettings.ClickHouseUrl), Database = database, Table = "r", OrderBy = [], Mirror = true, InsertLinger = TimeSpan.Zero };
        try
        {
            await using var sink = new ClickHouseSink(engine.Services, options);
            async Task<string> State() => await ClickHouseAsync(
                $"SELECT arrayStringConcat(groupArray(concat(toString(id), '|', ifNull(title, '~'), '|', ifNull(toString(n), '~'))), ',') FROM (SELECT * FROM {database}.r_current ORDER BY id)");
            await ReplayAsync(sink, State);
        }
        finally
        {
            await ClickHouseAsync($"DROP DATABASE IF EXISTS {database}");
        }
    }

    private static async Task ReplayAsync(IBatchSink sink, Func<Task<string>> state)
    {
        foreach (var batch in Batches[..3]) { await sink.WriteAsync(batch, "replay", CancellationToken.None); }
        (await state()).ShouldBe(BeforeTruncate);

        // A crash after the writes and before the checkpoint: everything again, then again as one joined write.
        foreach (var batch in Batches[..3]) { await sink.WriteAsync(batch, "replay", CancellationToken.None); }
        (await state()).ShouldBe(BeforeTruncate);
        await sink.WriteAsync(new RecordBatch(Batches[..3].SelectMany(b => b.Tables).ToList(), 30), "replay", CancellationToken.None);
        (await state()).ShouldBe(BeforeTruncate);

        await sink.WriteAsync(Batches[3], "replay", CancellationToken.None);
        (await state()).ShouldBe(AfterTruncate);
        foreach (var batch in Batches) { await sink.WriteAsync(batch, "replay", CancellationToken.None); }
        (await state()).ShouldBe(AfterTruncate);

        // Older changes after newer ones: the deleted and truncated rows stay gone, nothing regresses.
        await sink.WriteAsync(Batches[1], "replay", CancellationToken.None);
        await sink.WriteAsync(Batches[0], "replay", CancellationToken.None);
        (await state()).ShouldBe(AfterTruncate);
    }

    private static RecordBatch Batch(long position, params Change[] changes)
    {
        var b = new ColumnBatchBuilder(Schema, 16);
        foreach (var c in changes)
        {
            ((ValueColumnBuilder<long>)b[0]).Set(c.Id);
            if (c.Title is not null) { ((TypedColumnBuilder<string>)b[1]).Set(c.Title); }
            if (c.N is { } n) { ((ValueColumnBuilder<long>)b[2]).Set(n); }
            ((TypedColumnBuilder<string>)b[3]).Set(c.Op);
            ((ValueColumnBuilder<long>)b[4]).Set(c.Lsn);
            ((ValueColumnBuilder<long>)b[5]).Set(c.Seq);
            if (c.Unchanged is not null) { ((TypedColumnBuilder<string>)b[9]).Set(c.Unchanged); }
            b.CommitRow();
        }

        return new RecordBatch(b.Flush(), position);
    }

    private static async Task<string> PgScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        return Convert.ToString(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>Runs <paramref name="sql"/> on the test ClickHouse and returns its answer, trimmed (MirrorToastTests uses it too).</summary>
    internal static async Task<string> ClickHouseAsync(string sql)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var content = new StringContent(sql);
        using var response = await http.PostAsync(ServerSettings.ClickHouseUrl, content);
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.ShouldBeTrue(body);
        return body.Trim();
    }
}
