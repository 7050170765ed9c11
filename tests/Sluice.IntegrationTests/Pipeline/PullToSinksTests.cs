using System.Globalization;
using Sluice.Core;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;
using static Sluice.IntegrationTests.Pipeline.FilesToSinksTests;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>
/// Incremental pulls as stream sources, with no mapping: a real PostgreSQL table into the postgres sink and the lake,
/// rows updated between pulls (overlap and dedup by id and stamp), killed mid-pull with the table changing before the
/// restart; and a Salesforce object (the fake API) into the lake with typed columns and a refused record.
/// </summary>
public sealed class PullToSinksTests
{
    private static readonly DateTime T0 = new(2026, 2, 1, 8, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task Postgres_table_pulled_into_postgres_and_the_lake_keeps_every_version_once_through_updates_and_kills()
    {
        using var root = new TempFolder("sluice-pull-sinks");
        var id = Guid.NewGuid().ToString("N")[..10];
        var table = $"pull_src_{id}";
        var (cleanRecipe, cleanSchema) = WriteRecipe(Directory.CreateDirectory(root.Sub("clean-recipe")).FullName, table, $"pull_clean_{id}");
        var (crashRecipe, crashSchema) = WriteRecipe(Directory.CreateDirectory(root.Sub("crash-recipe")).FullName, table, $"pull_crash_{id}");
        var clean = Directory.CreateDirectory(root.Sub("clean")).FullName;
        var crashed = Directory.CreateDirectory(root.Sub("crashed")).FullName;
        try
        {
            await Pg($"""
                CREATE TABLE {table} (id text PRIMARY KEY, name text, amount bigint, updated_at timestamptz NOT NULL);
                INSERT INTO {table} SELECT 'k' || lpad(g::text, 4, '0'), 'n' || g, g, timestamptz '{T0:O}' + g * interval '1 second' FROM generate_series(1, 300) g;
                """);

            await RunAsync(clean, cleanRecipe);
            await KilledThenRestartedAsync(crashed, crashRecipe);

            // Between pulls: 20 rows changed and 10 new ones.
            await Pg($"""
                UPDATE {table} SET amount = amount + 1000, updated_at = timestamptz '{T0:O}' + interval '1 hour' + id_num * interval '1 second'
                  FROM (SELECT id AS k, substr(id, 2)::int AS id_num FROM {table}) n WHERE n.k = {table}.id AND n.id_num <= 20;
                INSERT INTO {table} SELECT 'k' || lpad(g::text, 4, '0'), 'n' || g, g, timestamptz '{T0:O}' + interval '2 hours' + g * interval '1 second' FROM generate_series(301, 310) g;
                """);
            await RunAsync(clean, cleanRecipe);
            // While the crashed one is down: two more changes, and a row committed late with a stamp inside the overlap
            // (below the newest stamp pulled): the clean run's next pull finds it by reading the overlap again.
            await KilledThenRestartedAsync(crashed, crashRecipe, changeWhileDown: async () => await Pg($"""
                UPDATE {table} SET amount = -1, updated_at = timestamptz '{T0:O}' + interval '3 hours' WHERE id IN ('k0100', 'k0200');
                INSERT INTO {table} VALUES ('late', 'late', 1, timestamptz '{T0:O}' + interval '2 hours' + 310 * interval '1 second' - interval '2 minutes');
                """));
            await RunAsync(clean, cleanRecipe);
            await RunAsync(clean, cleanRecipe); // nothing new: nothing lands

            const int versions = 300 + 20 + 10 + 1 + 2;
            const string lake = "SELECT count(*) AS n, count(DISTINCT (_id, _modified)) AS d, sum(amount) AS s, sum(hash(_id, _modified, name, amount)) AS h FROM pulled.{0}";
            var expected = await Query(clean, string.Format(CultureInfo.InvariantCulture, lake, table));
            expected.ShouldContain($"\n{versions},{versions},", Case.Sensitive, "every version once: overlap re-reads, dedup skips");
            (await Query(crashed, string.Format(CultureInfo.InvariantCulture, lake, table))).ShouldBe(expected, "the lake after kills equals a clean run's");

            const string pg = "SELECT count(*) || ',' || count(DISTINCT (_id, _modified)) || ',' || sum(amount) FROM {0}.{1}";
            var pgExpected = await Pg(string.Format(CultureInfo.InvariantCulture, pg, cleanSchema, table));
            pgExpected.ShouldStartWith($"{versions},{versions},");
            (await Pg(string.Format(CultureInfo.InvariantCulture, pg, crashSchema, table))).ShouldBe(pgExpected);
            Meta(crashed, "SELECT count(*) FROM pull_pages").ShouldBe(["0"], "every page committed by every sink is forgotten");
        }
        finally
        {
            await Pg($"DROP TABLE IF EXISTS {table}; DROP SCHEMA IF EXISTS {cleanSchema} CASCADE; DROP SCHEMA IF EXISTS {crashSchema} CASCADE");
        }
    }

    [Fact]
    public async Task Salesforce_object_pulled_into_the_lake_with_typed_columns_and_a_dead_letter_for_a_value_that_does_not_convert()
    {
        await using var sf = await FakeSalesforce.StartAsync();
        using var root = new TempFolder("sluice-sf-sinks");
        var recipe = Directory.CreateDirectory(root.Sub("recipe")).FullName;
        var data = Directory.CreateDirectory(root.Sub("data")).FullName;
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), sf.PullRecipe("sf-lake", "Attorney_Event__c", """
            fields: [Case_Id__c, Confidence_Score__c]
            columns: {Case_Id__c: string, Confidence_Score__c: double}
            """, """
            - type: lake
              zone: crm
              partition_by: _modified
            """));
        for (var i = 0; i < 120; i++)
        {
            sf.Add($"a{i:D4}", T0.AddSeconds(10 * i), new Dictionary<string, object?> { ["Case_Id__c"] = $"C{i}", ["Confidence_Score__c"] = i / 10.0 });
        }

        sf.Add("bad", T0.AddSeconds(5), new Dictionary<string, object?> { ["Case_Id__c"] = "X", ["Confidence_Score__c"] = "high" });
        var env = new Dictionary<string, string> { ["SALESFORCE_CLIENT_ID"] = FakeSalesforce.ClientId, ["SALESFORCE_CLIENT_SECRET"] = FakeSalesforce.Secret };
        await RunAsync(data, recipe, env);
        for (var i = 0; i < 5; i++) { sf.Add($"a{i:D4}", T0.AddHours(1).AddSeconds(i), new Dictionary<string, object?> { ["Case_Id__c"] = $"C{i}", ["Confidence_Score__c"] = 99.0 }); }
        await RunAsync(data, recipe, env);

        // 120 first versions (the refused one aside) and 5 second ones; scores 0.0 .. 11.9 and five times 99.
        (await Query(data, "SELECT count(*) AS n, count(DISTINCT _id) AS d, CAST(round(sum(Confidence_Score__c) * 10) AS BIGINT) AS s FROM crm.Attorney_Event__c"))
            .ShouldBe("n,d,s\n125,120,12090\n");
        var letter = Meta(data, "SELECT source || ' | ' || position || ' | ' || reason FROM dead_letters").ShouldHaveSingleItem();
        letter.ShouldBe("salesforce:sf-lake/accounts | bad modified 2026-02-01T08:00:05.0000000Z | field 'Confidence_Score__c': \"high\" is not a double");
    }

    [Fact]
    public async Task A_pull_with_neither_mapping_nor_sinks_and_one_with_both_are_refused_at_load()
    {
        using var root = new TempFolder("sluice-pull-validate");
        var recipe = Directory.CreateDirectory(root.Sub("recipe")).FullName;
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), """
            name: pull-validate
            pipelines:
              bare:
                source: {type: postgres_pull, table: t}
            """);
        var (code, output, err) = await SluiceProcess.RunAsync(Directory.CreateDirectory(root.Sub("data")).FullName, "validate", recipe);
        code.ShouldBe(1, err);
        (output + err).ShouldContain("source 'postgres_pull' without mapping: hands its rows to the pipeline's sinks and needs at least one");
    }

    private static (string Folder, string Schema) WriteRecipe(string folder, string table, string schema)
    {
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"""
            name: pull-sinks
            pipelines:
              pull:
                source:
                  type: postgres_pull
                  table: {table}
                  page_size: 40
                  overlap: 5m
                  poll_interval: 1s
                  columns: {"{"}name: string, amount: integer{"}"}
                sinks:
                  - type: lake
                    zone: pulled
                    partition_by: _modified
                  - type: postgres
                    schema: {schema}
                    keys:
                      {table}: [_id, _modified]
            """);
        return (folder, schema);
    }

    private static async Task RunAsync(string data, string recipe, IDictionary<string, string>? env = null)
    {
        using var run = SluiceProcess.Start(data, env, "run", recipe, "--once");
        (await run.WaitAsync(TimeSpan.FromMinutes(3))).ShouldBe(0, run.Stderr);
    }

    /// <summary>Killed after its second sink write (pages recorded, not every sink has them), then run again to the end.</summary>
    private static async Task KilledThenRestartedAsync(string data, string recipe, Func<Task>? changeWhileDown = null)
    {
        using (var run = SluiceProcess.Start(data, new Dictionary<string, string> { [CrashPoint.Variable] = "sink.written:2" }, "run", recipe, "--once"))
        {
            (await run.WaitAsync(TimeSpan.FromMinutes(3))).ShouldBe(137, "SIGKILL at sink.written:2: " + run.Stderr);
        }

        Meta(data, "SELECT count(*) FROM pull_pages").Single().ShouldNotBe("0", "the kill left pages handed on that not every sink committed");
        if (changeWhileDown is not null) { await changeWhileDown(); }
        await RunAsync(data, recipe);
    }
}
