using Sluice.IntegrationTests.Support;
using StackExchange.Redis;

namespace Sluice.IntegrationTests.Examples;

/// <summary>recipes/examples/cdc-to-redis-counters, run by <c>./sluice run</c> against the real Postgres and Redis.</summary>
public sealed class CdcToRedisCountersTests
{
    [Fact]
    public async Task Inserted_rows_are_counted_in_redis_once_each_across_transactions_snapshot_and_a_restart()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var prefix = $"ex{id}:";
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters",
            ("slot: example_counters", $"slot: sluice_ex_{id}"));
        world.Env["SLUICE_KEY_PREFIX"] = prefix;
        await using var redis = await ConnectionMultiplexer.ConnectAsync(Connectors.Redis.RedisUrl.Parse(ServerSettings.RedisUrl));
        try
        {
            await world.ExecuteAsync("""
                CREATE TABLE page_views (id bigserial PRIMARY KEY, page text NOT NULL, viewed_at timestamptz NOT NULL, seconds integer);
                INSERT INTO page_views (page, viewed_at, seconds) VALUES ('home', '2026-03-01T08:00:00Z', 10), ('home', '2026-03-01T08:05:00Z', 5);
                """);
            using (var run = SluiceProcess.Start(world.DataRoot, world.Env, "run", world.RecipeFolder))
            {
                await ExampleWorld.WaitForAsync(() => CountersAsync(redis, prefix), ["seconds:home=15", "views:home:2026-03-01=2"], "the snapshot counted", run, HttpLookupCdcToPostgresTests.SlotCreation);
                // One transaction each: a change's _seq starts again at 1 in every transaction.
                foreach (var insert in new[]
                {
                    "('home', '2026-03-01T09:00:00Z', 20)",
                    "('home', '2026-03-01T09:30:00Z', NULL)",
                    "('home', '2026-03-02T07:00:00Z', 1), ('pricing', '2026-03-01T09:00:00Z', 30)",
                    "('pricing', '2026-03-01T09:10:00Z', 3)",
                })
                {
                    await world.ExecuteAsync($"INSERT INTO page_views (page, viewed_at, seconds) VALUES {insert}");
                }

                await WaitForAsync(redis, prefix, ["seconds:home=36", "seconds:pricing=33", "views:home:2026-03-01=4", "views:home:2026-03-02=1", "views:pricing:2026-03-01=2"], run);
                (await run.StopAsync()).ShouldBe(0, run.Stderr);
            }

            // A restart reads on from the slot: what was counted is not counted again, the new row is.
            await world.ExecuteAsync("INSERT INTO page_views (page, viewed_at, seconds) VALUES ('pricing', '2026-03-01T11:00:00Z', 7)");
            using (var again = SluiceProcess.Start(world.DataRoot, world.Env, "run", world.RecipeFolder))
            {
                await WaitForAsync(redis, prefix, ["seconds:home=36", "seconds:pricing=40", "views:home:2026-03-01=4", "views:home:2026-03-02=1", "views:pricing:2026-03-01=3"], again);
                (await again.StopAsync()).ShouldBe(0, again.Stderr);
            }
        }
        finally
        {
            await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: prefix + "*")) { await redis.GetDatabase().KeyDeleteAsync(key); }
        }
    }

    /// <summary>Every counter under the prefix (not the position keys beside them) as name=value, in order.</summary>
    private static async Task<List<string>> CountersAsync(ConnectionMultiplexer redis, string prefix)
    {
        var counters = new List<string>();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: prefix + "*"))
        {
            var name = key.ToString();
            if (name.EndsWith(":_pos", StringComparison.Ordinal)) { continue; }
            counters.Add($"{name[prefix.Length..]}={await redis.GetDatabase().StringGetAsync(key)}");
        }

        return counters.Order(StringComparer.Ordinal).ToList();
    }

    private static Task<List<string>> WaitForAsync(ConnectionMultiplexer redis, string prefix, List<string> expected, SluiceProcess run) =>
        ExampleWorld.WaitForAsync(() => CountersAsync(redis, prefix), expected, "the counters", run);
}
