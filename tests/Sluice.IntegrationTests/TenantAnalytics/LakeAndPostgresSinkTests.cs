using System.Net;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class LakeAndPostgresSinkTests
{
    [Fact]
    public async Task Compaction_merges_small_files_while_queries_never_see_a_row_twice_or_miss_one()
    {
        using var engine = new Engine();
        var lake = engine.Services.Lake;
        var table = new LakeTable("t", "small", "date", FieldType.Date, [new FieldSpec("id", FieldType.Integer, true), new FieldSpec("ts", FieldType.Timestamp, true)]);
        lake.Register(table);
        long committed = 0;
        var nextId = 0L;
        void CommitFile(int rows)
        {
            using var stager = lake.BeginStaging("test");
            var ids = new long?[rows];
            var ts = new DateTime?[rows];
            for (var i = 0; i < rows; i++) { ids[i] = nextId++; ts[i] = new DateTime(2025, 11, 8, 1, 0, 0, DateTimeKind.Utc); }
            stager.AddPartitionAsync(table, "2025-11-08", [ids, ts], rows, CancellationToken.None).GetAwaiter().GetResult();
            lake.Commit(stager);
            Interlocked.Add(ref committed, rows);
        }

        for (var i = 0; i < 30; i++) { CommitFile(50); }
        using var stop = new CancellationTokenSource();
        var violations = new List<string>();
        var queries = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var before = Interlocked.Read(ref committed);
                var row = engine.Services.Query.Query("SELECT count(*), count(DISTINCT id) FROM t.small").Rows[0];
                var (count, distinct) = (Convert.ToInt64(row[0]), Convert.ToInt64(row[1]));
                if (count != distinct || count < before) { lock (violations) { violations.Add($"count {count}, distinct {distinct}, committed before {before}"); } }
                Interlocked.Increment(ref queries);
            }
        });

        var compactor = new LakeCompactor(lake);
        var merged = 0;
        // At least six rounds, and on until the reader has queried a few times while files were being replaced.
        for (var round = 0; round < 6 || (Volatile.Read(ref queries) <= 5 && round < 500); round++)
        {
            merged += compactor.Compact(table, 4, 10_000, CancellationToken.None);
            for (var i = 0; i < 5; i++) { CommitFile(20); }
        }

        merged += compactor.Compact(table, 2, 10_000, CancellationToken.None);
        await stop.CancelAsync();
        await reader;
        violations.ShouldBeEmpty();
        queries.ShouldBeGreaterThan(5);
        merged.ShouldBeGreaterThan(30);
        lake.Files("t.small").Count.ShouldBe(1);
        engine.Count("SELECT count(*) FROM t.small").ShouldBe(committed);
        engine.Count("SELECT count(DISTINCT id) FROM t.small").ShouldBe(committed);
    }

    [Fact]
    public async Task The_lake_sink_compacts_its_small_commits_in_the_background()
    {
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics", ("partition_by: event_ts", "partition_by: event_ts\n        compaction: {min_files: 4, interval: 200ms}"), ("batch_linger: 200ms", "batch_linger: 10ms"));
        await using var server = await TenantAnalyticsServer.StartAsync(engine, recipe);
        var writer = server.Token("cmp", TokenRole.Writer);
        var generator = new EcommerceEvents(new Random(5));
        for (var i = 0; i < 16; i++)
        {
            using var response = await server.PostAsync(writer, generator.Batch("cmp", [$"c{i}a", $"c{i}b"], new DateTime(2025, 11, 8, 3, 0, 0, DateTimeKind.Utc)));
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", (i + 1) * 2)).ShouldBe((i + 1) * 2);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (engine.Services.Lake.Files("analytics.events").Count > 4 && DateTime.UtcNow < deadline) { await Task.Delay(100); }
        engine.Services.Lake.Files("analytics.events").Count.ShouldBeLessThanOrEqualTo(4);
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(32);
        engine.Count("SELECT count(DISTINCT event_id) FROM analytics.events").ShouldBe(32);
    }

    [Fact]
    public async Task The_postgres_sink_copies_events_and_items_and_a_replayed_batch_changes_nothing()
    {
        var schema = "ta_" + Guid.NewGuid().ToString("N")[..10];
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics",
            ("      # - type: postgres\n      #   schema: tenant_analytics\n      #   keys:\n      #     events: [tenant_id, event_id]\n      #     event_items: [tenant_id, event_id, _index]",
             $"      - type: postgres\n        schema: {schema}\n        connection: \"{ServerSettings.PostgresConnectionString}\"\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]"));
        await using var pg = NpgsqlDataSource.Create(ServerSettings.PostgresConnectionString);
        try
        {
            await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
            {
                var writer = server.Token("pgt", TokenRole.Writer);
                var ids = Enumerable.Range(0, 300).Select(i => $"pg{i}").ToList();
                using var response = await server.PostAsync(writer, new EcommerceEvents(new Random(9)).Batch("pgt", ids, new DateTime(2025, 11, 8, 5, 0, 0, DateTimeKind.Utc)));
                response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
                (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 300)).ShouldBe(300);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (await CountAsync(pg, $"SELECT count(*) FROM {schema}.events") != 300 && DateTime.UtcNow < deadline) { await Task.Delay(100); }
            }

            (await CountAsync(pg, $"SELECT count(*) FROM {schema}.events")).ShouldBe(300);
            (await CountAsync(pg, $"SELECT count(*) FROM {schema}.event_items")).ShouldBe(engine.Count("SELECT count(*) FROM analytics.event_items"));
            (await CountAsync(pg, $"SELECT count(*) FROM {schema}.events WHERE customer_email LIKE '%@%'")).ShouldBe(0);

            // The same rows written again (a replay after a crash) change nothing.
            var rows = engine.Services.Query.Query("SELECT tenant_id, event_id, event_ts FROM analytics.events ORDER BY event_id LIMIT 50").Rows;
            var tableSchema = new TableSchema("events", [new FieldSpec("tenant_id", FieldType.String, true), new FieldSpec("event_id", FieldType.String, true), new FieldSpec("event_ts", FieldType.Timestamp, true)]);
            var batch = new ColumnBatch(tableSchema, [rows.Select(r => (string?)r[0]).ToArray(), rows.Select(r => (string?)r[1]).ToArray(), rows.Select(r => (DateTime?)DateTime.SpecifyKind((DateTime)r[2]!, DateTimeKind.Utc)).ToArray()], rows.Count);
            var sink = new PostgresSink(engine.Services, new PostgresSinkOptions
            {
                Connection = ServerSettings.PostgresConnectionString, Schema = schema,
                Keys = new Dictionary<string, IReadOnlyList<string>> { ["events"] = ["tenant_id", "event_id"] },
            });
            await using (sink)
            {
                await sink.WriteAsync(new RecordBatch(batch, 1), "test", CancellationToken.None);
                await sink.WriteAsync(new RecordBatch(batch, 1), "test", CancellationToken.None);
            }

            (await CountAsync(pg, $"SELECT count(*) FROM {schema}.events")).ShouldBe(300);
        }
        finally
        {
            await using var drop = pg.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    private static async Task<long> CountAsync(NpgsqlDataSource pg, string sql)
    {
        try
        {
            await using var cmd = pg.CreateCommand(sql);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync());
        }
        catch (PostgresException e) when (e.SqlState == "42P01" || e.SqlState == "3F000")
        {
            return -1;
        }
    }
}
