using System.Globalization;
using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Net;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Recipes.Reminders.Pipeline;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// repeat-reminder's two HTTP pipelines (<c>salesforce</c>, <c>mongo</c>: the <c>attorney_events</c> step, the
/// <c>reminder_store</c> sink) on three <c>sluice run --cluster</c> workers of the services' JetStream (ack wait 5 s),
/// with the store as shipped (the lake zone, on the cluster's shared lake) or in PostgreSQL. The first worker runs alone
/// until it SIGKILLs itself just after its store committed its second batch of events and before JetStream heard of it
/// (crash point <c>reminder.store-committed:2</c>), so those events come again to a worker after the ack wait; then two
/// more workers and the dead one started again share the rest while the client goes on posting to all three. Every
/// event answered 202 is in <c>attorney_events</c> exactly once (and in <c>source_event</c>), and a worker logged the
/// skip of the events the dead one had stored.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterRemindersHttpTests : IDisposable
{
    private const int Requests = 40;
    private const int EventsPerRequest = 100;
    private const string Client = "CLIENT-RH";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-cluster-reminders-http");
    private readonly string _database = "crh_" + Guid.NewGuid().ToString("N")[..12];

    public void Dispose()
    {
        ClusterProbes.DropDatabase(_database);

        _fixture.Dispose();
        _temp.Dispose();
    }

    [Theory]
    [InlineData("lake")]
    [InlineData("postgres")]
    public async Task Three_workers_store_each_acknowledged_event_once_across_a_worker_killed_after_storing_and_before_acknowledging(string store)
    {
        await ClusterProbes.ExecuteAsync(ServerSettings.PostgresConnectionString, $"CREATE DATABASE {_database}");
        var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(_database));
        env[SharedMetadata.FolderVariable] = Directory.CreateDirectory(_temp.Sub("shared")).FullName;
        env[ClusterOptions.AckWaitVariable] = "5";
        env["SLUICE_REMINDER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var recipe = WriteRecipe(store);
        string token;
        using (var created = SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub("admin")).FullName, env, "tokens", "create", "--role", "writer", "--tenant", Client, "--cluster"))
        {
            (await created.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, created.Stderr);
            token = created.Stdout.Trim().Split('\n')[^1];
        }

        var doomedEnv = new Dictionary<string, string>(env) { [Core.CrashPoint.Variable] = ReminderStoreSink.StoredCrashPoint + ":2" };
        var doomed = new ClusterWorker(Directory.CreateDirectory(_temp.Sub("worker0")).FullName, FreePort.Next(), token, recipe, doomedEnv);
        var workers = new[]
        {
            new ClusterWorker(doomed.Data, FreePort.Next(), token, recipe, env),
            new ClusterWorker(Directory.CreateDirectory(_temp.Sub("worker1")).FullName, FreePort.Next(), token, recipe, env),
            new ClusterWorker(Directory.CreateDirectory(_temp.Sub("worker2")).FullName, FreePort.Next(), token, recipe, env),
        };
        try
        {
            doomed.Start();
            await doomed.WaitHealthyAsync();

            // Half the requests to each stream; ids say which.
            var requests = Enumerable.Range(0, Requests).Select(r =>
            {
                var mongo = r % 2 == 0;
                var ids = Enumerable.Range(0, EventsPerRequest).Select(i => string.Create(CultureInfo.InvariantCulture, $"{(mongo ? "m" : "sf")}-{r}-{i}")).ToList();
                var at = new DateTime(2025, 7, 1, 9, 0, 0, DateTimeKind.Utc).AddHours(r);
                var events = ids.Select((id, i) => mongo ? Mongo(id, $"c{r}-{i}", at) : Salesforce(id, $"c{r}-{i}", at));
                return new PacedRequest(Encoding.UTF8.GetBytes("[" + string.Join(",", events) + "]"), ids.Select(id => (mongo ? "mongo," : "salesforce,") + id).ToList(), mongo ? "mongo" : "salesforce");
            }).ToList();
            // Until it dies only the doomed worker takes requests; then the three (refused while they start).
            var senders = ClusterPacedPosts.SendAsync(requests, () => doomed.Process!.HasExited ? workers : [doomed], Patience);
            await ClusterProbes.UntilAsync(() => (doomed.Process!.HasExited, true), "the first worker at its crash point", [doomed], Patience);
            doomed.Process!.Stderr.ShouldContain($"SLUICE_CRASH_AT: killed at {ReminderStoreSink.StoredCrashPoint}");
            foreach (var w in workers) { w.Start(); }
            foreach (var w in workers) { await w.WaitHealthyAsync(); }
            var acked = await senders;

            var expected = acked.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            expected.Count.ShouldBe(Requests * EventsPerRequest, "every request is accepted in the end");
            // The skip is polled too: the events the killed worker stored come again to a worker only after the ack wait.
            var stored = await ClusterProbes.UntilAsync(async () =>
            {
                var skipped = workers.Any(w => w.Process!.Stderr.Contains("were stored already", StringComparison.Ordinal));
                var rows = await EventsAsync(store, env);
                return (rows.Count >= expected.Count && skipped && workers.All(w => Backlog(w) == 0), rows);
            }, "every acknowledged event stored, the killed worker's stored events skipped where they came again, nothing waiting", workers, Patience);

            stored.Count.ShouldBe(expected.Count, "every acknowledged event is stored once, nothing twice");
            stored.Order(StringComparer.Ordinal).ToList().ShouldBe(expected, "exactly the acknowledged events");
            var (sourceEvents, positions) = await SourceEventsAsync(store, env);
            sourceEvents.ShouldBe(expected.Count, "each event once in source_event too");
            positions.ShouldBe(expected.Count, "each once");
            foreach (var w in workers) { w.Process!.HasExited.ShouldBeFalse(w.Stderr); }
        }
        finally
        {
            foreach (var w in workers.Prepend(doomed)) { w.Dispose(); }
            await DeleteStreamsAsync();
        }
    }

    /// <summary>repeat-reminder's two pushed streams and nothing else; its store the lake zone as shipped, or a PostgreSQL schema.</summary>
    private string WriteRecipe(string store)
    {
        var recipe = RecipeVariant.Create(_temp, "repeat-reminder");
        var text = File.ReadAllText(Path.Combine(recipe, "recipe.yaml"));
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), text[..text.IndexOf("\njobs:", StringComparison.Ordinal)] + "\n");
        if (store == "postgres")
        {
            var path = Path.Combine(recipe, "store.yaml");
            var yaml = File.ReadAllText(path);
            yaml.ShouldContain("lake:\n  zone: reminders");
            File.WriteAllText(path, yaml.Replace("lake:\n  zone: reminders", "postgres:\n  schema: repeat_reminder", StringComparison.Ordinal));
        }

        return recipe;
    }

    private static string Mongo(string id, string caseName, DateTime at) =>
        $$"""{"source": "Mongo", "_id": "{{id}}", "type": "service_closure", "event_timestamp": "{{Iso(at)}}", "case_id": "CASE-{{caseName}}", "client_id": "{{Client}}", "attorney_email": "ann@example.test", "status": "closed", "confidence_score": 0.5, "case_type": "Immigration", "case_last_action": "closed the file"}""";

    private static string Salesforce(string id, string caseName, DateTime at) =>
        $$"""{"source": "salesforce", "salesforce_object_id": "{{id}}", "event_type": "attorney actions", "timestamp": "{{Iso(at)}}", "case_id": "CASE-{{caseName}}", "client_id": "{{Client}}", "attorney_email": "ann@example.test", "attributes": {"status": "Likely to Repeat", "confidence_score": 0.82, "case_type": "Immigration", "Case_last_action": "call"} }""";

    private static string Iso(DateTime at) => at.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Every row of <c>attorney_events</c> as <c>source,source_id</c> (none while the store has no such table yet).</summary>
    private async Task<List<string>> EventsAsync(string store, IDictionary<string, string> env)
    {
        if (store == "lake")
        {
            return [.. LakeRows(env, "SELECT source || ',' || source_id FROM reminders.attorney_events")];
        }

        return await ClusterProbes.RowsAsync(StoreDatabase, "SELECT source || ',' || source_id FROM repeat_reminder.attorney_events", r => r.GetString(0), "repeat_reminder.attorney_events");
    }

    /// <summary>The rows of <c>source_event</c>, and how many distinct events (a source and a place in its stream: each stream numbers its own).</summary>
    private async Task<(long Rows, long Positions)> SourceEventsAsync(string store, IDictionary<string, string> env)
    {
        const string sql = "SELECT count(*) || ',' || count(DISTINCT source || position) FROM {0}.source_event";
        var figures = store == "lake"
            ? LakeRows(env, string.Format(CultureInfo.InvariantCulture, sql, "reminders")).Single()
            : (await ClusterProbes.RowsAsync(StoreDatabase, string.Format(CultureInfo.InvariantCulture, sql, "repeat_reminder"), r => r.GetString(0))).Single();
        var values = figures.Split(',').Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return (values[0], values[1]);
    }

    private string StoreDatabase => new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = _database }.ConnectionString;

    /// <summary>The rows of a query over the shared lake (<c>sluice query --cluster</c> from a folder no worker uses), header left out.</summary>
    private List<string> LakeRows(IDictionary<string, string> env, string sql)
    {
        using var p = SluiceProcess.StartIn(_temp.Path, _temp.Sub("elsewhere"), env, "query", sql, "--format", "csv", "--cluster");
        var code = p.WaitAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        if (code != 0 && p.Stderr.Contains("attorney_events", StringComparison.Ordinal)) { return []; }
        code.ShouldBe(0, p.Stderr);
        return [.. p.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Trim().Trim('"'))];
    }

    /// <summary>Events a worker's pipelines have not yet had acknowledged, summed over both streams (-1 while one shows none).</summary>
    private static long Backlog(ClusterWorker worker)
    {
        var (code, stdout, _) = SluiceProcess.RunAsync(worker.Data, "status", "--format", "json").GetAwaiter().GetResult();
        if (code != 0) { return -1; }
        var total = 0L;
        foreach (var pipeline in System.Text.Json.JsonDocument.Parse(stdout).RootElement.GetProperty("pipelines").EnumerateArray())
        {
            var backlog = pipeline.GetProperty("backlog");
            if (backlog.ValueKind != System.Text.Json.JsonValueKind.Object) { return -1; }
            total += backlog.GetProperty("value").GetInt64();
        }

        return total;
    }

    private async Task DeleteStreamsAsync()
    {
        await using var nats = new NatsConnection(new NatsOpts { Url = ClusterEnvironment.ServicesNats, ConnectTimeout = TimeSpan.FromSeconds(30), RequestTimeout = TimeSpan.FromSeconds(30) });
        var js = nats.CreateJetStreamContext();
        foreach (var stream in new[] { "salesforce", "mongo" })
        {
            try { await js.DeleteStreamAsync($"SLUICE_{_fixture.Cluster}_repeat-reminder_{stream}"); }
            catch (NatsJSApiException) { /* never made */ }
        }
    }
}
