using System.Globalization;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core.Metadata;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.RepeatReminder;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A <c>salesforce</c> pull with a keyed postgres sink on two <c>sluice run --cluster</c> workers (lease 3 s), against
/// the tests' Salesforce-style API answering each page after 250 ms, so a pull takes several seconds: one worker pulls,
/// the other stands by. The puller SIGKILLed mid-pull: the other takes the pull over from the shared cursor (no second
/// pull from the start) and every record lands once. The puller SIGSTOPped mid-pull past its lease and SIGCONTed after
/// the other took over: it writes nothing (its page refused by the lease's fence, or its run stopped by its renewal
/// seeing the lease gone, whichever comes first on waking), says so with a warning, and stands by again while the
/// other pulls on. The fence on its own, deterministically: <see cref="PullFenceTests"/>.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterPullTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private static readonly DateTime T0 = new(2026, 2, 1, 8, 0, 0, DateTimeKind.Utc);

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-cluster-pull");
    private readonly string _name = "sfpull-" + Guid.NewGuid().ToString("N")[..8];

    private string Schema => _name.Replace('-', '_');

    private string PullItem => $"{_name}/accounts";

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        using (var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            c.Open();
            using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {Schema} CASCADE", c);
            drop.ExecuteNonQuery();
        }

        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task A_salesforce_pull_goes_on_from_the_shared_cursor_on_the_other_worker_after_its_puller_is_SIGKILLed_and_every_record_lands_once()
    {
        await using var sf = await StartSalesforceAsync(400);
        var workers = StartWorkers(sf);
        try
        {
            var puller = await PullingAsync(workers, CountAsync, 100);

            puller.Kill();
            var next = await PullerAsync(workers.Where(w => w != puller).ToList(), workers);
            next.ShouldNotBe(puller);
            Add(sf, 400, 100, T0.AddHours(1));
            await UntilAsync(async () => (await CountAsync() >= 500, true), "every record in the sink", workers);

            await AssertEveryRecordOnceAsync(500);
            sf.Queries.Count(q => !q.Contains("SystemModstamp >=", StringComparison.Ordinal))
                .ShouldBe(1, "the worker that took the pull over went on from the shared watermark instead of pulling from the start:\n" + string.Join("\n", sf.Queries));
            await UntilAsync(async () => (await PendingPagesAsync() == 0, true), "every page committed by the sink forgotten", workers);
            next.Process!.HasExited.ShouldBeFalse(next.Stderr);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
        }
    }

    [Fact]
    public async Task A_puller_SIGSTOPped_past_its_lease_writes_nothing_on_SIGCONT_says_so_and_stands_by_while_the_other_pulls_on()
    {
        await using var sf = await StartSalesforceAsync(400);
        var workers = StartWorkers(sf);
        try
        {
            var paused = await PullingAsync(workers, CountAsync, 60);

            paused.Process!.Signal(19); // SIGSTOP: mid-pull, a page request in flight or a page on its way to the sink
            var next = await PullerAsync(workers.Where(w => w != paused).ToList(), workers);
            Add(sf, 400, 100, T0.AddHours(1));
            await UntilAsync(async () => (await CountAsync() >= 500, true), "every record in the sink, pulled by the other worker", workers);

            paused.Process.Signal(18); // SIGCONT
            var woke = await UntilAsync(() =>
            {
                var err = paused.Process.Stderr;
                var fenced = err.Contains("the pull's lease (token", StringComparison.Ordinal) && err.Contains("is another worker's now", StringComparison.Ordinal);
                return (fenced || err.Contains("lost the pull's lease", StringComparison.Ordinal), fenced ? "fenced" : "lost");
            }, "the resumed worker's warning that it lost the pull", workers);
            Console.WriteLine($"the resumed worker stopped pulling: {woke}");

            // Back to standing by: alive and green, holding nothing, while the other pulls on.
            await UntilAsync(() =>
            {
                var views = WorkerRegistry.List(_fixture.Store, TimeProvider.System);
                var mine = views.SingleOrDefault(v => v.Pid == paused.Process.Pid);
                var theirs = views.SingleOrDefault(v => v.Pid == next.Process!.Pid);
                return (mine is { Health: "green" } && !Held(mine, "pulls").Contains(PullItem) && theirs is not null && Held(theirs, "pulls").Contains(PullItem), true);
            }, "the resumed worker green and standing by, the other holding the pull", workers);
            Add(sf, 500, 50, T0.AddHours(2));
            await UntilAsync(async () => (await CountAsync() >= 550, true), "the records added after the resume", workers);

            await AssertEveryRecordOnceAsync(550);
            paused.Process.HasExited.ShouldBeFalse(paused.Stderr);
            paused.Process.Stderr.ShouldNotContain("duplicate key", customMessage: "the resumed worker recorded no page over the other's");
            paused.Process.Stderr.ShouldNotContain("fail:", customMessage: "and nothing failed");
        }
        finally
        {
            foreach (var w in workers)
            {
                if (w.Process is { HasExited: false } p) { p.Signal(18); }
                w.Dispose();
            }
        }
    }

    /// <summary>
    /// The same pull with a lake sink beside the keyed postgres one, on the shared lake: a first worker alone is killed
    /// right after its first lake commit (crash point <c>lake.sink-committed</c>: a page in the lake, not acknowledged);
    /// of the two workers started next, the one that takes the pull over hands that page on again (the lake's checkpoint,
    /// committed with it, skips it); that puller is SIGKILLed mid-pull and the other goes on. The lake holds every record
    /// once, and its record of the records' numbers in the cursor's log (what skips a page a holder paused past its lease
    /// commits after the next holder did) is one run over all of them.
    /// </summary>
    [Fact]
    public async Task A_salesforce_pull_into_the_shared_lake_lands_every_record_once_across_a_kill_after_a_lake_commit_and_its_next_pullers_SIGKILL()
    {
        await using var sf = await StartSalesforceAsync(400);
        var env = WorkerEnvironment(new() { [SharedMetadata.FolderVariable] = Directory.CreateDirectory(_temp.Sub("shared")).FullName });
        var recipe = WriteRecipe(sf, $"""
            - type: lake
              zone: {Schema}
              partition_by: _modified
            """);
        var first = new Dictionary<string, string>(env) { [Sluice.Core.CrashPoint.Variable] = Sluice.Connectors.Lake.LakeSink.CommittedCrashPoint };
        using (var doomed = SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub("doomed")).FullName, first, "run", recipe, "--cluster", "--port", "0"))
        {
            await UntilAsync(() => (doomed.HasExited, true), "the first worker at its crash point", []);
            doomed.Stderr.ShouldContain($"killed at {Sluice.Connectors.Lake.LakeSink.CommittedCrashPoint}");
        }

        (await PendingPagesAsync()).ShouldBeGreaterThan(0, "the killed worker left a page in the lake that not every sink acknowledged");
        var workers = StartWorkers(recipe, env);
        try
        {
            var puller = await PullingAsync(workers, CountAsync, 200);

            puller.Kill();
            var next = await PullerAsync(workers.Where(w => w != puller).ToList(), workers);
            Add(sf, 400, 100, T0.AddHours(1));
            await UntilAsync(async () => (await CountAsync() >= 500 && await PendingPagesAsync() == 0, true), "every record in the sinks, every page acknowledged", workers);

            await AssertEveryRecordOnceAsync(500);
            using var query = SluiceProcess.Start(next.Data, env, "query", $"SELECT count(*) || '/' || count(DISTINCT _id) || '/' || sum(score) AS c FROM {Schema}.account", "--format", "csv", "--cluster");
            (await query.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, query.Stderr);
            query.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe(["c", $"500/500/{Enumerable.Range(0, 500).Sum()}"], "the shared lake holds every record once");
            (await ScalarTextAsync($"SELECT count(*) || ',' || min(first_seq) || ',' || max(last_seq) FROM sluice_meta_{_fixture.Cluster}.lake_log_commits WHERE log LIKE 'salesforce:{_name}/accounts@%'"))
                .ShouldBe("1,1,500", "the lake recorded the records' numbers in the cursor's log, one run from 1 across both take-overs");
            next.Process!.HasExited.ShouldBeFalse(next.Stderr);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
        }
    }

    [Fact]
    public async Task A_salesforce_pull_with_mapping_into_a_postgres_reminder_store_goes_on_after_its_pullers_SIGKILL_and_lands_each_event_once()
    {
        // The store appends (no key): an event landed twice would be counted twice.
        await using var sf = await FakeSalesforce.StartAsync();
        sf.PageSize = 20;
        sf.PageDelay = TimeSpan.FromMilliseconds(250);
        AddEvents(sf, 0, 300, T0);
        var recipe = RecipeVariant.Create(_temp, "repeat-reminder");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), sf.PullRecipe(_name, "Attorney_Event__c", """
            fields: [Event_Type__c, Event_Timestamp__c, Case_Id__c, Client_Id__c, Attorney_Email__c, Status__c, Confidence_Score__c]
            mapping: mappings/salesforce-api.yaml
            overlap: 5m
            """));
        var store = Path.Combine(recipe, "store.yaml");
        File.WriteAllText(store, File.ReadAllText(store).Replace("lake:\n  zone: reminders", $"postgres:\n  schema: {Schema}", StringComparison.Ordinal));
        var env = WorkerEnvironment(ClusterEnvironment.Postgres(new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString).Database ?? "postgres"));
        env["SLUICE_REMINDER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var workers = StartWorkers(recipe, env);
        try
        {
            var puller = await PullingAsync(workers, EventsAsync, 60);

            puller.Kill();
            var next = await PullerAsync(workers.Where(w => w != puller).ToList(), workers);
            AddEvents(sf, 300, 60, T0.AddHours(1));
            await UntilAsync(async () => (await EventsAsync() >= 360, true), "every event in the store", workers);
            // Two polls more of the API (not a fixed time, which on a loaded machine may pass before the next poll): nothing lands again.
            var polled = sf.Queries.Count;
            await UntilAsync(() => (sf.Queries.Count >= polled + 2, true), "two more polls of the API", workers);

            (await EventsAsync()).ShouldBe(360, "each event once");
            (await ScalarAsync($"SELECT count(DISTINCT source_id) FROM {Schema}.attorney_events")).ShouldBe(360);
            sf.Queries.Count(q => !q.Contains("SystemModstamp >=", StringComparison.Ordinal)).ShouldBe(1, "the worker that took over went on from the store's watermark");
            next.Process!.HasExited.ShouldBeFalse(next.Stderr);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
        }
    }

    private async Task<long> EventsAsync()
    {
        try
        {
            return await ScalarAsync($"SELECT count(*) FROM {Schema}.attorney_events");
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return 0;
        }
    }

    /// <summary>Attorney events <c>e&lt;n&gt;</c> as the salesforce-api mapping reads them, a second apart from <paramref name="start"/>.</summary>
    private static void AddEvents(FakeSalesforce sf, int from, int count, DateTime start)
    {
        for (var i = from; i < from + count; i++)
        {
            var at = start.AddSeconds(i - from);
            sf.Add($"e{i:D5}", at, new Dictionary<string, object?>
            {
                ["Event_Type__c"] = "attorney actions", ["Event_Timestamp__c"] = at.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'+0000'", CultureInfo.InvariantCulture),
                ["Case_Id__c"] = $"case-{i}", ["Client_Id__c"] = "acme", ["Attorney_Email__c"] = "counsel@example.com",
                ["Status__c"] = "Likely to Repeat", ["Confidence_Score__c"] = 0.9,
            });
        }
    }

    private static async Task<FakeSalesforce> StartSalesforceAsync(int records)
    {
        var sf = await FakeSalesforce.StartAsync();
        sf.PageSize = 20;
        sf.PageDelay = TimeSpan.FromMilliseconds(250);
        Add(sf, 0, records, T0);
        return sf;
    }

    /// <summary>Records <c>a&lt;n&gt;</c> for n from <paramref name="from"/>, a second apart from <paramref name="start"/>, each with its number as <c>score</c>.</summary>
    private static void Add(FakeSalesforce sf, int from, int count, DateTime start)
    {
        for (var i = 0; i < count; i++)
        {
            sf.Add($"a{from + i:D5}", start.AddSeconds(i), new Dictionary<string, object?> { ["score"] = from + i });
        }
    }

    private List<ClusterWorker> StartWorkers(FakeSalesforce sf) => StartWorkers(WriteRecipe(sf), WorkerEnvironment([]));

    /// <summary>The pull of object <c>account</c> into a keyed postgres sink, and <paramref name="more"/> sinks.</summary>
    private string WriteRecipe(FakeSalesforce sf, string more = "")
    {
        var folder = Directory.CreateDirectory(_temp.Sub(_name)).FullName;
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), sf.PullRecipe(_name, "account", """
            fields: [score]
            columns: {score: integer}
            overlap: 5m
            """, $"""
            - type: postgres
              schema: {Schema}
              connection: "{ServerSettings.PostgresConnectionString}"
              keys:
                account: [_id, _modified]
            """ + "\n" + more));
        return folder;
    }

    /// <summary>The workers' environment: the shared store, a 3 s lease, the API's credentials, and <paramref name="more"/>.</summary>
    private Dictionary<string, string> WorkerEnvironment(Dictionary<string, string> more)
    {
        var env = ClusterEnvironment.Of(_fixture.Cluster, more);
        env[PartitionLeases.DurationVariable] = "3";
        env["SALESFORCE_CLIENT_ID"] = FakeSalesforce.ClientId;
        env["SALESFORCE_CLIENT_SECRET"] = FakeSalesforce.Secret;
        return env;
    }

    private List<ClusterWorker> StartWorkers(string recipe, Dictionary<string, string> env) => ClusterWorker.StartAll(_temp, 2, recipe, env);

    /// <summary>
    /// Once the workers are up: the one pulling, when <paramref name="landed"/> counts at least <paramref name="minimum"/>
    /// (mid-pull). Asked of the registry after the count, right before the caller acts on it: on a loaded machine the
    /// 3 s lease may have changed hands while the pull went on, so the worker that pulled first may pull no more.
    /// </summary>
    private async Task<ClusterWorker> PullingAsync(List<ClusterWorker> workers, Func<Task<long>> landed, long minimum)
    {
        foreach (var w in workers) { await w.WaitHealthyAsync(); }
        await PullerAsync(workers, workers);
        await UntilAsync(async () => (await landed() >= minimum, true), "the pull mid-way", workers);
        return await PullerAsync(workers, workers);
    }

    /// <summary>The one worker of <paramref name="among"/> the registry shows holding the pull (alive, green or red), once there is one.</summary>
    private Task<ClusterWorker> PullerAsync(IReadOnlyList<ClusterWorker> among, IReadOnlyList<ClusterWorker> all) => UntilAsync(() =>
    {
        var views = WorkerRegistry.List(_fixture.Store, TimeProvider.System);
        var pullers = among.Where(w => views.Any(v => v.Pid == w.Process!.Pid && v.Health is "green" or "red" && Held(v, "pulls").Contains(PullItem))).ToList();
        return (pullers.Count == 1, pullers.FirstOrDefault()!);
    }, "one worker holding the pull", all);

    private static IReadOnlyList<string> Held(WorkerView view, string kind) => view.Holds.TryGetValue(kind, out var items) ? items : [];

    /// <summary>Each record once, as the API has it: its id's number as its score.</summary>
    private async Task AssertEveryRecordOnceAsync(int records)
    {
        (await ScalarAsync($"SELECT count(*) FROM {Schema}.account")).ShouldBe(records, "no record twice");
        (await ScalarAsync($"SELECT count(DISTINCT _id) FROM {Schema}.account WHERE score = substring(_id from 2)::int")).ShouldBe(records, "every record, as the API has it");
    }

    private async Task<long> CountAsync()
    {
        try
        {
            return await ScalarAsync($"SELECT count(*) FROM {Schema}.account");
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return 0; // the sink makes its table with its first batch
        }
    }

    private Task<long> PendingPagesAsync() =>
        ScalarAsync($"SELECT count(*) FROM sluice_meta_{_fixture.Cluster}.pull_pages WHERE source = 'salesforce:{_name}/accounts'");

    private static Task<string?> ScalarTextAsync(string sql) => ClusterProbes.ScalarTextAsync(ServerSettings.PostgresConnectionString, sql);

    private static Task<long> ScalarAsync(string sql) => ClusterProbes.CountAsync(ServerSettings.PostgresConnectionString, sql);

    private static Task<T> UntilAsync<T>(Func<(bool Found, T Value)> probe, string what, IReadOnlyList<ClusterWorker> workers) =>
        ClusterProbes.UntilAsync(probe, what, workers, Patience);

    private static Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, IReadOnlyList<ClusterWorker> workers) =>
        ClusterProbes.UntilAsync(probe, what, workers, Patience);
}
