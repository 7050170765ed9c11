using System.Net;
using Npgsql;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// tenant-analytics with its PostgreSQL sink on a server that is SIGKILLed while events stream in, and started again:
/// ingest and the lake go on, the landing log keeps what PostgreSQL has not taken, and once it is back every
/// acknowledged event is in its table exactly once.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class PostgresSinkRestartTests
{
    [Fact]
    public async Task The_postgres_sink_server_killed_mid_stream_and_restarted_ends_with_every_event_once()
    {
        await using var pg = new ThrowawayPostgres();
        await pg.StartAsync();
        await pg.CreateDatabaseAsync("ta");
        using var engine = new Engine();
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics",
            ("      # - type: postgres\n      #   schema: tenant_analytics\n      #   keys:\n      #     events: [tenant_id, event_id]\n      #     event_items: [tenant_id, event_id, _index]",
             $"      - type: postgres\n        schema: chaos\n        connection: \"Host=127.0.0.1;Port={pg.Port};Username=sluice;Database=ta\"\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]"));
        var acked = new List<string>();
        const int Batches = 12;
        await using (var server = await TenantAnalyticsServer.StartAsync(engine, recipe))
        {
            var writer = server.Token("pgk", TokenRole.Writer);
            for (var batch = 0; batch < Batches; batch++)
            {
                if (batch == 4)
                {
                    await WaitForAsync(pg, acked.Count);
                    await pg.KillAsync();
                }

                if (batch == 8) { await pg.StartAsync(); }
                var ids = Enumerable.Range(0, 250).Select(i => $"pgk-{batch}-{i}").ToList();
                using var response = await server.PostAsync(writer, new EcommerceEvents(new Random(batch)).Batch("pgk", ids, new DateTime(2025, 11, 8, 6, 0, 0, DateTimeKind.Utc)));
                response.StatusCode.ShouldBe(HttpStatusCode.Accepted, "ingest does not depend on a sink's server");
                acked.AddRange(ids);
            }

            await WaitForAsync(pg, acked.Count);
            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", acked.Count)).ShouldBe(acked.Count);
        }

        var rows = await ScalarAsync(pg, "SELECT count(*) FROM chaos.events");
        var distinct = await ScalarAsync(pg, "SELECT count(DISTINCT event_id) FROM chaos.events");
        ChaosFigures.Record(nameof(The_postgres_sink_server_killed_mid_stream_and_restarted_ends_with_every_event_once), "tenant-analytics", "postgres (sink) SIGKILL mid-stream, restarted",
            acked.Count, acked.Count, rows, rows - distinct, acked.Count - distinct, "figures of the PostgreSQL table; the lake sink held every event throughout");
        rows.ShouldBe(acked.Count);
        distinct.ShouldBe(acked.Count);
        (await ScalarAsync(pg, "SELECT count(*) FROM chaos.event_items")).ShouldBe(engine.Count("SELECT count(*) FROM analytics.event_items"));
    }

    private static async Task WaitForAsync(ThrowawayPostgres pg, long expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        long last = -1;
        while (DateTime.UtcNow < deadline)
        {
            last = await TryScalarAsync(pg, "SELECT count(*) FROM chaos.events");
            if (last == expected) { return; }
            await Task.Delay(200);
        }

        throw new TimeoutException($"PostgreSQL has {last} of {expected} events after 120 s");
    }

    private static async Task<long> TryScalarAsync(ThrowawayPostgres pg, string sql)
    {
        try
        {
            return await ScalarAsync(pg, sql);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            return -1;
        }
    }

    private static async Task<long> ScalarAsync(ThrowawayPostgres pg, string sql)
    {
        await using var connection = new NpgsqlConnection(pg.ConnectionString("ta") + ";Pooling=false");
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
