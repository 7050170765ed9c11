using System.Text.RegularExpressions;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Steps;

/// <summary>
/// <c>lookup</c> against a real Postgres: the content dimension loaded from its table and kept current by its CDC
/// changes in the same stream, events joined with it and written to Postgres by the <c>postgres</c> sink.
/// </summary>
public sealed partial class LookupCdcTests
{
    private static string WithLookup(string yaml)
    {
        var database = DatabaseName().Match(yaml).Groups[1].Value;
        var connection = $"Host={ServerSettings.PgHost};Port={ServerSettings.PgPort};Username={ServerSettings.PgUser};Password={ServerSettings.PgPassword};Database={database}";
        var steps = $$"""
                steps:
                  - type: lookup
                    tables: [engagement_events]
                    key: content_id
                    dimension:
                      table: content
                      connection: { database: "{{database}}" }
                    fields: [content_type, title]
                    prefix: content_
                    max_rows: 1000
                    on_miss: keep
                sinks:
                  - type: postgres
                    connection: "{{connection}}"
                    schema: enriched
                    keys: { engagement_events: [event_id], content: [content_id, _lsn, _seq] }

            """;
        return yaml[..yaml.IndexOf("    steps:", StringComparison.Ordinal)] + steps + yaml[yaml.IndexOf("jobs:", StringComparison.Ordinal)..];
    }

    [Fact]
    public async Task Events_are_joined_with_the_CDC_kept_dimension_and_an_update_leaving_a_TOASTed_title_unchanged_does_not_blank_it()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: WithLookup);
        using var engine = new Engine();
        // A title Postgres stores out of line (TOAST): an update that does not touch it does not send it.
        await scenario.ExecuteAsync("UPDATE content SET title = (SELECT string_agg(md5(i::text || random()::text), '') FROM generate_series(1, 400) i) WHERE content_id = 7");
        var title = await scenario.ScalarAsync<string>("SELECT title FROM content WHERE content_id = 7");
        var type = await scenario.ScalarAsync<string>("SELECT content_type FROM content WHERE content_id = 7");
        await using var run = scenario.Start(engine);

        var first = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (7, 1, 'play', 1000, 'web') RETURNING event_id");
        await WaitForAsync(scenario, first);
        await scenario.ExecuteAsync("UPDATE content SET content_type = 'changed', length_seconds = 999 WHERE content_id = 7");
        var after = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (7, 1, 'play', 1000, 'web') RETURNING event_id");
        var unknown = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (424242, 1, 'play', 1000, 'web') RETURNING event_id");
        await WaitForAsync(scenario, unknown);

        (await scenario.ScalarAsync<string>($"SELECT content_content_type || '|' || content_title FROM enriched.engagement_events WHERE event_id = {first}")).ShouldBe($"{type}|{title}");
        (await scenario.ScalarAsync<string>($"SELECT content_content_type || '|' || coalesce(content_title, 'NULL') FROM enriched.engagement_events WHERE event_id = {after}")).ShouldBe($"changed|{title}");
        (await scenario.ScalarAsync<string>($"SELECT coalesce(content_content_type, 'NULL') || '|' || coalesce(content_title, 'NULL') FROM enriched.engagement_events WHERE event_id = {unknown}")).ShouldBe("NULL|NULL");
        // The update really left the title out (else this test would prove nothing about TOAST).
        (await scenario.ScalarAsync<long>("SELECT count(*) FROM enriched.content WHERE content_id = 7 AND _unchanged LIKE '%title%'")).ShouldBe(1);
    }

    private static async Task WaitForAsync(CdcScenario scenario, long eventId)
    {
        var until = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                if (await scenario.ScalarAsync<long>($"SELECT count(*) FROM enriched.engagement_events WHERE event_id = {eventId}") == 1) { return; }
            }
            catch (Npgsql.PostgresException)
            {
                // The sink has not created its table yet.
            }

            DateTime.UtcNow.ShouldBeLessThan(until, $"event {eventId} did not reach the postgres sink within 90 s");
            await Task.Delay(100);
        }
    }

    [GeneratedRegex("database: \"(sluice_t4_[0-9a-f]+)\"")]
    private static partial Regex DatabaseName();
}
