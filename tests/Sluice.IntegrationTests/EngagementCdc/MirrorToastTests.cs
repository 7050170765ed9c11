using System.Globalization;
using Npgsql;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Lake;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// An update that leaves a TOASTed value unchanged (<c>_unchanged</c>, docs/CDC.md), for every mirror sink on its real
/// server, wherever the row's previous version is: (a) earlier in the same batch, (b) in an earlier batch, (c) the old
/// key of a key change in the same batch (DEFAULT identity marks the value; FULL carries it), (d) a key change cut in
/// two by a batch boundary: the delete of the old key ends one batch and the insert of the new one starts the next, or
/// comes again with the delete after a restart (<see cref="SplitCases"/>). Each mirror must end with every value, never
/// NULL in its place, and the lake must refuse nothing.
/// </summary>
public sealed class MirrorToastTests
{
    private static readonly TableSchema Items = new("items", [
        new FieldSpec("id", FieldType.Integer, true), new FieldSpec("name", FieldType.String, false), new FieldSpec("body", FieldType.String, false),
        .. ChangeEnvelope.Fields])
    {
        Key = ["id"],
    };

    private const string Unchanged = "[\"body\"]";

    /// <summary>Where the previous version is: each case's batches and the rows the mirror ends with are in <see cref="Case"/>.</summary>
    public static TheoryData<string> Cases => new() { "same batch", "earlier batch", "key change", "key change, full identity" };

    /// <summary>
    /// A key change cut by a batch boundary. postgres_cdc never cuts a transaction (its batches end at commits, and a
    /// restart reads whole transactions again), so only a sink handed such batches meets it; the postgres mirror takes
    /// the old key's values from the row the delete removed (<c>_sluice_mirror_gone</c>), the ClickHouse mirror from its
    /// <c>&lt;table&gt;_sluice_gone</c> table, the lake mirror from the stored changes (docs/CDC.md).
    /// </summary>
    public static TheoryData<string> SplitCases => new() { "key change split", "key change split, replayed" };

    private static (RecordBatch[] Batches, string[] Expected) Case(string name) => name switch
    {
        "same batch" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1"), C("u", 10, 2, 1, "uno", null, Unchanged), C("u", 11, 1, 1, "un", null, Unchanged))], ["1|un|long-1"]),
        "earlier batch" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1")), Batch(20, C("u", 20, 1, 1, "uno", null, Unchanged)), Batch(30, C("u", 30, 1, 1, "un", null, Unchanged))], ["1|un|long-1"]),
        "key change" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1")), Batch(20, C("d", 20, 1, 1, null, null), C("c", 20, 2, 10, "one", null, Unchanged), C("u", 21, 1, 10, "ten", null, Unchanged))], ["10|ten|long-1"]),
        "key change, full identity" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1")), Batch(20, C("d", 20, 1, 1, "one", "long-1"), C("c", 20, 2, 10, "one", "long-1"))], ["10|one|long-1"]),
        // The old key's last version (a new body) is in the batch its delete ends.
        "key change split" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1"), C("c", 10, 2, 2, "two", "long-2")),
            Batch(20, C("u", 14, 1, 2, "dos", null, Unchanged), C("u", 15, 1, 1, "uno", "long-1b"), C("d", 20, 1, 1, null, null)),
            Batch(30, C("c", 20, 2, 10, "uno", null, Unchanged)), Batch(40, C("u", 40, 1, 10, "ten", null, Unchanged))], ["2|dos|long-2", "10|ten|long-1b"]),
        "key change split, replayed" => ([Batch(10, C("c", 10, 1, 1, "one", "long-1")), Batch(20, C("d", 20, 1, 1, null, null)),
            Batch(30, C("d", 20, 1, 1, null, null), C("c", 20, 2, 10, "one", null, Unchanged)), Batch(40, C("u", 40, 1, 10, "ten", null, Unchanged))], ["10|ten|long-1"]),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(SplitCases))]
    public async Task The_postgres_mirror_keeps_unchanged_toasted_values(string name)
    {
        var schema = "toast_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        try
        {
            await using var sink = new PostgresSink(engine.Services, new PostgresSinkOptions { Connection = ServerSettings.PostgresConnectionString, Schema = schema, Mirror = true });
            var (batches, expected) = Case(name);
            foreach (var batch in batches) { await sink.WriteAsync(batch, "toast", CancellationToken.None); }
            (await PgRowsAsync($"SELECT concat_ws('|', id, coalesce(name, '~'), coalesce(body, '~')) FROM {schema}.items ORDER BY id")).ShouldBe(expected);
        }
        finally
        {
            await PgRowsAsync($"DROP SCHEMA IF EXISTS {schema} CASCADE");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(SplitCases))]
    public async Task The_clickhouse_mirror_keeps_unchanged_toasted_values(string name)
    {
        var database = "toast_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        var options = new ClickHouseOptions { Url = new Uri(ServerSettings.ClickHouseUrl), Database = database, Table = "items", OrderBy = [], Mirror = true, InsertLinger = TimeSpan.Zero };
        try
        {
            await using var sink = new ClickHouseSink(engine.Services, options);
            var (batches, expected) = Case(name);
            foreach (var batch in batches) { await sink.WriteAsync(batch, "toast", CancellationToken.None); }
            var rows = await MirrorReplayTests.ClickHouseAsync($"SELECT concat(toString(id), '|', ifNull(name, '~'), '|', ifNull(body, '~')) FROM {database}.items_current ORDER BY id FORMAT TabSeparated");
            rows.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe(expected);
        }
        finally
        {
            await MirrorReplayTests.ClickHouseAsync($"DROP DATABASE IF EXISTS {database}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    [MemberData(nameof(SplitCases))]
    public async Task The_lake_mirror_keeps_unchanged_toasted_values(string name)
    {
        using var engine = new Engine();
        await using var sink = new LakeSink(engine.Services, new LakeSinkOptions
        {
            Mode = LakeSinkMode.Mirror, Zone = "m", PositionColumn = ChangeEnvelope.Lsn, CompactInterval = TimeSpan.Zero,
            Keys = new Dictionary<string, IReadOnlyList<string>> { ["items"] = ["id"] },
        });
        var (batches, expected) = Case(name);
        foreach (var batch in batches) { await sink.WriteAsync(batch, "test/toast/lake:m", CancellationToken.None); }
        engine.Services.Query.Query("SELECT id, name, body FROM m.items ORDER BY id").Rows
            .Select(r => string.Join('|', r.Select(v => v is null ? "~" : LakeQueryEngine.FormatValue(v)))).ToList().ShouldBe(expected);
        engine.Services.DeadLetters.List("lake:m", Core.DeadLetters.DeadLetterStore.Pending).ShouldBeEmpty();
    }

    private static object?[] C(string op, long lsn, long seq, long id, string? name, string? body, string? unchanged = null) =>
        [id, name, body, op, lsn, seq, lsn * 10, DateTime.UtcNow, null, unchanged];

    private static RecordBatch Batch(long position, params object?[][] rows)
    {
        var columns = Items.Fields.Select(f => f.Type switch
        {
            FieldType.Integer => (Array)new long?[rows.Length],
            FieldType.Timestamp => new DateTime?[rows.Length],
            _ => new string?[rows.Length],
        }).ToArray();
        for (var r = 0; r < rows.Length; r++)
        {
            for (var c = 0; c < columns.Length; c++) { columns[c].SetValue(rows[r][c], r); }
        }

        return new RecordBatch(new ColumnBatch(Items, columns, rows.Length), position);
    }

    private static async Task<List<string>> PgRowsAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync()) { rows.Add(reader.IsDBNull(0) ? "~" : Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture)!); }
        return rows;
    }
}
