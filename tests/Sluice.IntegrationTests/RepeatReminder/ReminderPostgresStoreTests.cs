using Npgsql;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The same recipe with its tables in PostgreSQL (store.yaml: postgres.schema) instead of the lake.</summary>
public sealed class ReminderPostgresStoreTests
{
    [Fact]
    public async Task Events_rule_view_and_sent_log_live_in_postgres_and_reminders_go_out_once()
    {
        var schema = $"rr_{Guid.NewGuid():N}"[..20];
        await using var pg = NpgsqlDataSource.Create(ServerSettings.PostgresConnectionString);
        try
        {
            using var h = new ReminderHarness(editStore: store => store
                .Replace("lake:\n  zone: reminders", $"postgres:\n  schema: {schema}", StringComparison.Ordinal));
            h.Options.Store.PostgresSchema.ShouldBe(schema);
            await h.LandAsync("mongo", h.Mongo("A", T0), h.Mongo("B", T0), h.Mongo("A", T0));
            await h.LandAsync("salesforce", h.Salesforce("A", T0.AddDays(1)), h.Salesforce("B", T0.AddDays(1), status: "Not Likely"), "{}");

            (await h.EvaluateAsync(T0 + TimeSpan.FromDays(30) - TimeSpan.FromSeconds(1))).RowsOut.ShouldBe(0);
            var outcome = await h.EvaluateAsync(T0 + TimeSpan.FromDays(30));
            await h.EvaluateAsync(T0 + TimeSpan.FromDays(31));

            outcome.RowsOut.ShouldBe(1, outcome.Message);
            h.Mails().Count.ShouldBe(1);
            (await Scalar(pg, $"SELECT count(*) FROM {schema}.attorney_events")).ShouldBe(5L);
            (await Scalar(pg, $"SELECT count(*) FROM {schema}.source_event WHERE error IS NOT NULL")).ShouldBe(1L);
            (await Scalar(pg, $"SELECT count(*) FROM {schema}.attorney_events WHERE attorney_email LIKE 'enc1:%' AND client_id LIKE 'enc1:%'")).ShouldBe(5L);
            (await Scalar(pg, $"SELECT status FROM {schema}.attorney_reminder WHERE case_id = '{h.Case("A")}'")).ShouldBe("sent");
            (await Scalar(pg, $"SELECT count(*) FROM {schema}.vw_reminder_ready")).ShouldBe(0L, "the view (as of now(), long after) shows nothing unsent");
            (await Scalar(pg, $"SELECT value FROM {schema}.checkpoints WHERE key = 'test:salesforce'")).ShouldNotBeNull();
            h.Engine.Services.Lake.Tables().ShouldBeEmpty("nothing went to the lake");
        }
        finally
        {
            await using var drop = pg.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    private static async Task<object?> Scalar(NpgsqlDataSource pg, string sql)
    {
        await using var cmd = pg.CreateCommand(sql);
        return await cmd.ExecuteScalarAsync();
    }
}
