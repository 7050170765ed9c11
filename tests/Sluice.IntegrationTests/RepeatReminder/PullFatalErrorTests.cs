using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>A pull that can never succeed (no such table, a refused login) ends <c>sluice run</c> at once instead of failing again at every poll.</summary>
public sealed class PullFatalErrorTests
{
    [Fact]
    public async Task A_missing_table_ends_the_run_at_once_naming_it()
    {
        var table = $"rr_missing_{Guid.NewGuid():N}"[..24];
        var (code, error) = await RunAsync(table, null);

        code.ShouldBe(2, error);
        error.ShouldContain($"error: repeat-reminder: pipeline 'mongo-table' (postgres_pull) failed: PostgreSQL table public.{table}");
        error.ShouldContain("does not exist");
        error.ShouldNotContain("   at ", Case.Sensitive, "no stack trace");
    }

    [Fact]
    public async Task A_refused_login_ends_the_run_at_once_saying_so()
    {
        var (code, error) = await RunAsync("any_table", new Dictionary<string, string>(StringComparer.Ordinal) { ["PGPASSWORD"] = "not-the-password" });

        code.ShouldBe(2, error);
        error.ShouldContain("error: repeat-reminder: pipeline 'mongo-table' (postgres_pull) failed: ");
        error.ShouldContain("password authentication failed");
        error.ShouldNotContain("   at ", Case.Sensitive, "no stack trace");
    }

    [Fact]
    public async Task Salesforce_refusing_the_client_credentials_ends_the_run_at_once()
    {
        await using var sf = await FakeSalesforce.StartAsync();
        var idVar = $"SLUICE_TEST_SF_ID_{Guid.NewGuid():N}";
        var secretVar = $"SLUICE_TEST_SF_SECRET_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable(idVar, FakeSalesforce.ClientId);
        Environment.SetEnvironmentVariable(secretVar, "not-the-secret");
        using var h = new ReminderHarness(recipe => recipe.Replace("pipelines:\n", $"""
            pipelines:
              salesforce-api:
                source:
                  type: salesforce
                  login_url: {sf.Url}
                  client_id_env: {idVar}
                  client_secret_env: {secretVar}
                  object: Attorney_Event__c
                  fields: [Case_Id__c]
                  mapping: mappings/salesforce-api.yaml

            """, StringComparison.Ordinal));
        // On the harness's fake clock the next poll never comes: only a failure that ends the run ends it.
        await using var host = new Sluice.Hosting.RecipeHost(h.Recipe, h.Services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0) };

        var error = await Should.ThrowAsync<Core.ComponentFailedException>(() => host.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));

        error.Component.ShouldBe("pipeline 'salesforce-api' (salesforce)");
        error.Reason.ShouldContain("token request refused (400): invalid_client: invalid client credentials; check the client id and secret");
        sf.Queries.ShouldBeEmpty();
    }

    private static async Task<(int Code, string Error)> RunAsync(string table, IDictionary<string, string>? env)
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("pipelines:\n", $"""
            pipelines:
              mongo-table:
                source:
                  type: postgres_pull
                  table: public.{table}
                  key_column: _id
                  updated_column: updated_at
                  mapping: mappings/mongo.yaml

            """, StringComparison.Ordinal));
        using var run = SluiceProcess.Start(h.Engine.DataRoot, env, "run", h.RecipeFolder, "--port", "0");
        // A deadline for the exit once the run has started (not a performance measure: the pull fails at its first look).
        await run.WaitForOutputOrExitAsync("Ctrl-C stops", TimeSpan.FromSeconds(60));
        var code = await run.WaitAsync(TimeSpan.FromSeconds(60));
        return (code, run.Stderr);
    }
}
