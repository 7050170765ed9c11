using System.Globalization;
using Sluice.Connectors.Http;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.TestServers;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>Rows a backfill sends to the dead-letter store (the API sink's bounded retries) are counted in its summary.</summary>
public sealed class BackfillDeadLetterTests
{
    [Fact]
    public async Task A_backfill_through_an_API_that_always_fails_names_its_dead_letters_and_fails_when_asked()
    {
        await using var scenario = await CdcScenario.CreateAsync(new MockEventsApiOptions { Port = 0, FailRate = 1 });
        using var engine = new Engine();
        await scenario.InsertAsync(1200, rowsPerStatement: 200, seed: 7);
        var (from, to) = Range();

        // Without the flag: exit 0, and the summary says where the rows went (1,200 rows = 3 requests of at most 500).
        var lenient = await BackfillAsync(scenario, engine, from, to);
        lenient.Code.ShouldBe(0, lenient.Err);
        lenient.Out.ShouldContain("1200 rows of public.engagement_events");
        lenient.Out.ShouldContain("; 1200 rows in 3 dead letters went to the dead-letter store (sluice dlq list)");
        engine.Services.DeadLetters.Count("http:engagement-cdc/api").ShouldBe(3);

        var strict = await BackfillAsync(scenario, engine, from, to, "--fail-on-dead-letters");
        strict.Code.ShouldBe(4, strict.Out + strict.Err);
        strict.Out.ShouldContain("1200 rows in 3 dead letters went to the dead-letter store");
        engine.Services.DeadLetters.Count("http:engagement-cdc/api").ShouldBe(3, "the same requests failing again renew their letters");
        (await SluiceProcess.RunAsync(engine.DataRoot, "job", "history", "--job", "engagement-cdc/backfill")).Out.ShouldContain("dead letters");
    }

    [Fact]
    public async Task A_backfill_whose_rows_all_get_through_exits_0_with_the_flag()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var engine = new Engine();
        await scenario.InsertAsync(300, seed: 8);
        var (from, to) = Range();

        var run = await BackfillAsync(scenario, engine, from, to, "--fail-on-dead-letters");
        run.Code.ShouldBe(0, run.Out + run.Err);
        run.Out.ShouldContain("300 rows of public.engagement_events");
        run.Out.ShouldNotContain("dead letter");
        scenario.Api.Stats().DistinctIds.ShouldBe(300);
    }

    private static (string From, string To) Range() =>
        (DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
         DateTimeOffset.UtcNow.AddMinutes(1).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));

    private static async Task<(int Code, string Out, string Err)> BackfillAsync(CdcScenario scenario, Engine engine, string from, string to, params string[] extra)
    {
        using var backfill = SluiceProcess.Start(engine.DataRoot, scenario.ProcessEnvironment, ["backfill", "engagement-cdc/backfill", "--from", from, "--to", to, .. extra]);
        var code = await backfill.WaitAsync(TimeSpan.FromMinutes(3));
        return (code, backfill.Stdout, backfill.Stderr);
    }
}
