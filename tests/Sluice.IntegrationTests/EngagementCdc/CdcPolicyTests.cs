using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

public sealed class CdcPolicyTests
{
    [Fact]
    public async Task Update_and_delete_policies_apply_and_a_table_without_replica_identity_is_reported_at_start()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => y.Replace(
            "engagement_events: { on_update: ignore, on_delete: ignore }", "engagement_events: { on_update: dead_letter, on_delete: ignore }", StringComparison.Ordinal));
        await scenario.ExecuteAsync("ALTER TABLE content REPLICA IDENTITY NOTHING");
        using var folder = new TempFolder("sluice-data");
        using var logs = new CapturingLogs();
        using var services = new EngineServices(new DataDirectory(folder.Path), TimeProvider.System, logs);
        await scenario.InsertAsync(10, seed: 90);
        await using (var host = new RecipeHost(scenario.LoadRecipe(), services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        logs.Text.ShouldContain("Table public.content has no usable replica identity (REPLICA IDENTITY NOTHING)");
        await scenario.ExecuteAsync("ALTER TABLE content REPLICA IDENTITY DEFAULT");
        await scenario.ExecuteAsync("UPDATE engagement_events SET duration_ms = 1 WHERE event_id = 3");
        await scenario.ExecuteAsync("DELETE FROM engagement_events WHERE event_id = 4");
        await scenario.InsertAsync(5, seed: 91);
        await using (var host = new RecipeHost(scenario.LoadRecipe(), services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        var letters = services.DeadLetters.List("postgres_cdc:", DeadLetterStore.Pending);
        letters.Count.ShouldBe(1);
        letters[0].Source.ShouldBe($"postgres_cdc:engagement-cdc/{scenario.Slot}");
        letters[0].Reason.ShouldContain("on_update policy is dead_letter");
        letters[0].Payload.ShouldNotBeNull().ShouldContain("\"duration_ms\":\"1\"");
        // The update was not applied and the delete ignored: ClickHouse still has event 3 as inserted, and event 4.
        (await scenario.ClickHouseAsync($"SELECT count() FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id IN (3, 4) AND duration_ms != 1")).ShouldBe("2");
        (await scenario.ClickHouseCountAsync()).ShouldBe(15);
    }
}
