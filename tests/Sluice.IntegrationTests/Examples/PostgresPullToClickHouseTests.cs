using System.Globalization;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Examples;

/// <summary>recipes/examples/postgres-pull-to-clickhouse, run by <c>./sluice run --once</c> against the real Postgres and ClickHouse.</summary>
public sealed class PostgresPullToClickHouseTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public async Task A_pulled_table_reaches_clickhouse_with_the_latest_version_of_each_row_after_updates_between_pulls()
    {
        var clickhouse = $"ex_{Guid.NewGuid():N}";
        await using var world = await ExampleWorld.CreateAsync("postgres-pull-to-clickhouse", ("database: crm", $"database: {clickhouse}"));
        try
        {
            await world.ExecuteAsync("""
                CREATE SCHEMA crm;
                CREATE TABLE crm.customers (id text PRIMARY KEY, name text, tier text, balance double precision, updated_at timestamptz NOT NULL);
                INSERT INTO crm.customers VALUES
                  ('c1', 'Ann', 'free', 0, '2026-03-01T09:00:00Z'),
                  ('c2', 'Bob', 'team', 120.5, '2026-03-01T09:01:00Z'),
                  ('c3', 'Cy', 'free', 3, '2026-03-01T09:02:00Z');
                """);
            await world.RunOnceAsync();
            await world.ExecuteAsync("""
                UPDATE crm.customers SET tier = 'enterprise', balance = 990, updated_at = '2026-03-01T10:00:00Z' WHERE id = 'c2';
                INSERT INTO crm.customers VALUES ('c4', 'Di', 'team', 42, '2026-03-01T10:01:00Z');
                """);
            await world.RunOnceAsync();

            (await ClickHouseAsync($"SELECT _id, name, tier, balance, version FROM {clickhouse}.customers FINAL ORDER BY _id FORMAT TSV")).ShouldBe(string.Join('\n',
                "c1\tAnn\tfree\t0\t" + Micros("2026-03-01T09:00:00Z"),
                "c2\tBob\tenterprise\t990\t" + Micros("2026-03-01T10:00:00Z"),
                "c3\tCy\tfree\t3\t" + Micros("2026-03-01T09:02:00Z"),
                "c4\tDi\tteam\t42\t" + Micros("2026-03-01T10:01:00Z")));
        }
        finally
        {
            await ClickHouseAsync($"DROP DATABASE IF EXISTS {clickhouse}");
        }
    }

    private static string Micros(string at) =>
        ((DateTimeOffset.Parse(at, CultureInfo.InvariantCulture) - DateTimeOffset.UnixEpoch).Ticks / 10).ToString(CultureInfo.InvariantCulture);

    private static async Task<string> ClickHouseAsync(string sql)
    {
        using var content = new StringContent(sql);
        using var response = await Http.PostAsync(ServerSettings.ClickHouseUrl, content);
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.ShouldBeTrue($"ClickHouse: {body}");
        return body.Trim();
    }
}
