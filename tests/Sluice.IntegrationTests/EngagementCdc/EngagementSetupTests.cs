using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

public sealed class EngagementSetupTests
{
    /// <summary>
    /// The PostgreSQL warehouse creates a schema named after the user, which a default search_path puts before public:
    /// the setup's tables must still go to public, where the recipe reads them.
    /// </summary>
    [Fact]
    public async Task Setup_creates_the_tables_in_public_when_a_schema_named_after_the_user_exists()
    {
        var database = $"sluice_setup_{Guid.NewGuid().ToString("N")[..10]}";
        await using (var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await admin.OpenAsync();
            await new NpgsqlCommand($"CREATE DATABASE {database}", admin).ExecuteNonQueryAsync();
        }

        try
        {
            var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database);
            await using (var db = new NpgsqlConnection(pg.ConnectionString("sluice-test")))
            {
                await db.OpenAsync();
                await new NpgsqlCommand($"CREATE SCHEMA \"{ServerSettings.PgUser}\"", db).ExecuteNonQueryAsync();
            }

            await new EngagementGenerator(pg).SetupAsync(Path.Combine(TestPaths.Recipe("engagement-cdc"), "schema.sql"), CancellationToken.None);
            await new EngagementGenerator(pg).RunAsync(new EngagementGeneratorOptions { Rate = 0, Limit = 3 }, null, CancellationToken.None);

            await using var check = new NpgsqlConnection(pg.ConnectionString("sluice-test"));
            await check.OpenAsync();
            await using var tables = new NpgsqlCommand("SELECT string_agg(table_schema || '.' || table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_name IN ('content', 'engagement_events')", check);
            (await tables.ExecuteScalarAsync()).ShouldBe("public.content,public.engagement_events");
            await using var events = new NpgsqlCommand("SELECT count(*) FROM public.engagement_events", check);
            (await events.ExecuteScalarAsync()).ShouldBe(3L);
        }
        finally
        {
            await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await admin.OpenAsync();
            await new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin).ExecuteNonQueryAsync();
        }
    }
}
