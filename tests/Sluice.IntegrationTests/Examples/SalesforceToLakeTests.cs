using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;
using static Sluice.IntegrationTests.Pipeline.FilesToSinksTests;

namespace Sluice.IntegrationTests.Examples;

/// <summary>recipes/examples/salesforce-to-lake, run by <c>./sluice run --once</c> against the Salesforce API the tests fake on 127.0.0.1.</summary>
public sealed class SalesforceToLakeTests
{
    private static readonly DateTime T0 = new(2026, 3, 1, 9, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task Opportunities_are_pulled_into_the_lake_every_version_once_and_a_bad_amount_is_dead_lettered()
    {
        await using var sf = await FakeSalesforce.StartAsync();
        await using var world = await ExampleWorld.CreateAsync("salesforce-to-lake");
        world.Env["SALESFORCE_LOGIN_URL"] = sf.Url;
        world.Env["SALESFORCE_CLIENT_ID"] = FakeSalesforce.ClientId;
        world.Env["SALESFORCE_CLIENT_SECRET"] = FakeSalesforce.Secret;
        sf.Add("006A", T0, Opportunity("Acme renewal", "Prospecting", 1200.5));
        sf.Add("006B", T0.AddMinutes(1), Opportunity("Globex pilot", "Qualification", 300));
        sf.Add("006C", T0.AddMinutes(2), Opportunity("Initech", "Prospecting", "lots"));
        await world.RunOnceAsync();
        sf.Add("006A", T0.AddHours(1), Opportunity("Acme renewal", "Closed Won", 1250));
        await world.RunOnceAsync();
        await world.RunOnceAsync(); // nothing changed: nothing lands

        (await Query(world.DataRoot, "SELECT _id, strftime(_modified, '%Y-%m-%d %H:%M') AS modified, Name, StageName, Amount FROM crm.Opportunity ORDER BY _id, _modified")).ShouldBe("""
            _id,modified,Name,StageName,Amount
            006A,2026-03-01 09:00,Acme renewal,Prospecting,1200.5
            006A,2026-03-01 10:00,Acme renewal,Closed Won,1250
            006B,2026-03-01 09:01,Globex pilot,Qualification,300

            """.ReplaceLineEndings("\n"));
        Meta(world.DataRoot, "SELECT source || ' | ' || position || ' | ' || reason FROM dead_letters").ShouldBe([
            "salesforce:salesforce-to-lake/opportunities | 006C modified 2026-03-01T09:02:00.0000000Z | field 'Amount': \"lots\" is not a double",
        ]);
    }

    private static Dictionary<string, object?> Opportunity(string name, string stage, object amount) =>
        new() { ["Name"] = name, ["StageName"] = stage, ["Amount"] = amount };
}
