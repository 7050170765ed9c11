using System.Text.Json;
using Microsoft.Playwright;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Management;
using Sluice.IntegrationTests.OperationsConsole;
using Sluice.IntegrationTests.Support;
using Worker = Sluice.IntegrationTests.Cluster.ClusterCdcTests.Worker;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A CDC snapshot's progress as a cluster shows it (docs/CDC.md "Snapshots on demand", docs/SCALING.md): two
/// <c>sluice run --cluster</c> workers of a recipe with a <c>postgres_cdc</c> pipeline and a <c>sluice cdc snapshot
/// --cluster</c> of its 2,000 rows in chunks of 100. The worker holding the slot shows the snapshot in its pipeline's
/// <c>/api/status</c>, its <c>/metrics</c>, <c>sluice status</c> of its folder and its console's CDC page; the other
/// worker shows it, naming the holder, in its <c>/api/status</c>'s <c>snapshots</c> (from the shared store) and its
/// console's Workers page; <c>status --cluster</c> names the holder too. The snapshot is held still after its 10th chunk
/// (its condition waits on an advisory lock the test holds, for the holder's chunk reads of ids 1001-1100 only), so its
/// running state is seen exactly, 1,000 of 2,000 rows in 10 chunks; then it goes on to done, 2,000 rows in 20 chunks.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterSnapshotStatusTests
{
    // Generous: two workers (and three NATS nodes) start and a snapshot goes through JetStream on a loaded machine.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    /// <summary>The advisory lock the snapshot's condition waits on (advisory locks are per database: the scenario's own).</summary>
    private const long Hold = 7_707_025;

    /// <summary>
    /// Every row passes, but the holder's read of ids 1001-1100 (chunk 11) waits while the test holds <see cref="Hold"/>;
    /// the command's count (another application name) and the key range's end (the greatest id) do not wait.
    /// </summary>
    private static readonly string Where =
        $"id <= 1000 OR id > 1100 OR current_setting('application_name') <> 'sluice-cdc-incremental' OR (SELECT true FROM pg_advisory_xact_lock_shared({Hold}))";

    [Theory]
    [InlineData("jetstream")]
    [InlineData("holder")]
    public async Task The_holder_and_the_other_worker_show_a_snapshots_progress_to_done(string cdc)
    {
        await using var scenario = await CdcSnapshotScenario.CreateAsync(rows: 2000, snapshot: false, keyless: false);
        // A chunk must be read in key order through the primary key, so that its condition meets its own rows only: a
        // sort (the plan for a table without statistics) filters every row past the chunk first, and chunk 2 would wait
        // on the lock meant for chunk 11. Fresh statistics, and no sorts in the test's own database (set before any worker connects).
        await scenario.ExecuteAsync("ANALYZE items");
        await scenario.ExecuteAsync($"ALTER DATABASE {scenario.Database} SET enable_sort = off");
        await using var nats = cdc == "jetstream" ? await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName) : null;
        var cluster = "csnst" + scenario.Id;
        var env = ClusterEnvironment.Cdc(cluster, scenario.Environment, nats, cdc);
        var elsewhere = Path.Combine(scenario.RecipesRoot, "elsewhere");
        SluiceProcess Command(params string[] args) => SluiceProcess.StartIn(scenario.RecipesRoot, elsewhere, env, args);

        var workers = new List<(string Id, Worker Worker)>();
        await using var hold = new NpgsqlConnection(scenario.Pg.ConnectionString("snapshot-status-test"));
        try
        {
            string token;
            using (var created = Command("tokens", "create", "--role", "admin", "--tenant", "ops", "--cluster"))
            {
                (await created.WaitAsync(Patience)).ShouldBe(0, created.Stderr);
                token = created.Stdout.Trim().Split('\n')[^1];
            }

            foreach (var id in new[] { "snap-a", "snap-b" })
            {
                var data = Directory.CreateDirectory(Path.Combine(scenario.DataRoot, id)).FullName;
                workers.Add((id, new Worker(data, new Dictionary<string, string>(env) { [Sluice.Cluster.WorkerIdentity.Variable] = id }, "snap")));
            }

            foreach (var (_, w) in workers) { await w.WaitStartedAsync(); }
            await CdcScenario.WaitUntilAsync(async () => await scenario.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}' AND active") == 1,
                Patience, () => Task.FromResult("the slot is not read: " + ClusterCdcTests.Stderr(workers.Select(w => w.Worker))));

            // Each worker's console, logged in before the snapshot is held still (the holder's chunk read waits meanwhile).
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await ConsoleFixture.LaunchChromiumAsync(playwright);
            var consoles = new Dictionary<string, IPage>();
            foreach (var (id, w) in workers) { consoles[id] = await LogInAsync(browser, w, token); }

            await hold.OpenAsync();
            await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({Hold})", hold)) { await take.ExecuteNonQueryAsync(); }
            using var snapshot = Command("cdc", "snapshot", "snap/cdc", "--table", "items", "--chunk-rows", "100", "--where", Where, "--cluster");
            await snapshot.WaitForOutputAsync("handed to", Patience);

            // Held after its 10th chunk: the holder's pipeline and the other worker's cluster view show it running.
            var (holder, other) = await ShownAsync(workers, SnapshotStatus.Running, rows: 1000, chunks: 10, () => snapshot.Stderr);
            Console.WriteLine($"{cdc}: held at 1,000 of 2,000 rows, shown by {holder.Id} (the holder) and {other.Id}");
            await ConsoleRowShowsAsync(consoles[other.Id], "running", "1,000", "10", "50%", holder.Id);

            await using (var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({Hold})", hold)) { (await release.ExecuteScalarAsync()).ShouldBe(true); }
            (await snapshot.WaitAsync(Patience)).ShouldBe(0, $"{snapshot.Stdout}\n{snapshot.Stderr}\n{ClusterCdcTests.Stderr(workers.Select(w => w.Worker))}");
            snapshot.Stdout.ShouldContain("snapshot 1 of public.items done: 2000 rows read in 20 chunks");
            (holder, other) = await ShownAsync(workers, SnapshotStatus.Done, rows: 2000, chunks: 20, () => snapshot.Stdout);
            await scenario.WaitForEqualAsync(Patience);

            // The holder's metrics and `sluice status` of its data folder; status --cluster from a folder of its own.
            var file = ManagementFile.All(new DataDirectory(holder.Worker.Data)).Single();
            const string Labels = "recipe=\"snap\",pipeline=\"cdc\",table=\"public.items\",request=\"1\"";
            await ManagementClientSide.WaitForMetricsAsync(file.Url, Patience,
                $"sluice_cdc_snapshot_rows_read{{{Labels}}} 2000", $"sluice_cdc_snapshot_rows_total{{{Labels}}} 2000", $"sluice_cdc_snapshot_state{{{Labels},state=\"done\"}} 1");
            var local = await SluiceProcess.RunAsync(holder.Worker.Data, "status", "--format", "json");
            local.Code.ShouldBe(0, local.Err);
            Done(ManagementClientSide.Json(local.Out).GetProperty("pipelines")[0].GetProperty("snapshots")[0], local.Out);
            using (var status = Command("status", "--cluster", "--format", "json"))
            {
                (await status.WaitAsync(Patience)).ShouldBe(0, status.Stderr);
                var shown = ManagementClientSide.Json(status.Stdout).GetProperty("snapshots")[0];
                Done(shown, status.Stdout);
                shown.GetProperty("worker").GetString().ShouldBe(holder.Id, status.Stdout);
                shown.GetProperty("pipeline").GetString().ShouldBe("snap/cdc", status.Stdout);
            }

            // The console: done on the other worker's Workers page, and on the holder's CDC page (its pipeline's snapshots).
            await ConsoleRowShowsAsync(consoles[other.Id], "done", "2,000", "20", "100%", holder.Id);
            await consoles[holder.Id].GotoAsync("/ui/cdc");
            await ConsoleRowShowsAsync(consoles[holder.Id], "done", "2,000", "20", "100%", null);
        }
        finally
        {
            await hold.CloseAsync();
            foreach (var (_, w) in workers) { w.Dispose(); }
            await ClusterCdcJetStreamTests.DropSchemaAsync(cluster);
        }
    }

    /// <summary>
    /// Polls both workers until one shows snapshot 1 in its pipeline's status with <paramref name="state"/>, rows and
    /// chunks as given, and the other shows it so in the cluster's <c>snapshots</c>, naming the first as its worker.
    /// </summary>
    private static async Task<((string Id, Worker Worker) Holder, (string Id, Worker Worker) Other)> ShownAsync(
        List<(string Id, Worker Worker)> workers, string state, long rows, long chunks, Func<string> command)
    {
        var seen = "";
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var views = new List<JsonElement?>();
            foreach (var (_, w) in workers) { views.Add(await StatusAsync(w)); }
            seen = string.Join("\n", views.Select((v, i) => $"{workers[i].Id}: {v?.ToString() ?? "(no answer)"}"));
            for (var h = 0; h < workers.Count; h++)
            {
                var o = 1 - h;
                if (views[h] is not { } mine || views[o] is not { } theirs) { continue; }
                var cluster = theirs.GetProperty("snapshots").EnumerateArray().FirstOrDefault(s => s.GetProperty("id").GetInt64() == 1);
                // The other worker's pipeline shows none: a snapshot is on the status (and metrics) of the worker running it only.
                if (Matches(PipelineSnapshot(mine), state, rows, chunks) && PipelineSnapshot(theirs).ValueKind == JsonValueKind.Undefined
                    && Matches(cluster, state, rows, chunks) && cluster.GetProperty("worker").GetString() == workers[h].Id
                    && cluster.GetProperty("pipeline").GetString() == "snap/cdc" && cluster.GetProperty("table").GetString() == "public.items")
                {
                    return (workers[h], workers[o]);
                }
            }

            DateTime.UtcNow.ShouldBeLessThan(deadline, $"no worker showed snapshot 1 {state} at {rows} rows in {chunks} chunks in its pipeline, with the other naming it\n{seen}\n{command()}\n{ClusterCdcTests.Stderr(workers.Select(w => w.Worker))}");
            await Task.Delay(250);
        }
    }

    /// <summary>Snapshot 1 in the status's pipeline, or an undefined element when it shows none.</summary>
    private static JsonElement PipelineSnapshot(JsonElement status) =>
        status.GetProperty("pipelines")[0].TryGetProperty("snapshots", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().FirstOrDefault(s => s.GetProperty("id").GetInt64() == 1) : default;

    private static bool Matches(JsonElement shown, string state, long rows, long chunks) =>
        shown.ValueKind == JsonValueKind.Object && shown.GetProperty("state").GetString() == state && shown.GetProperty("rowsRead").GetInt64() == rows
        && shown.GetProperty("total").GetInt64() == 2000 && shown.GetProperty("chunks").GetInt64() == chunks;

    private static void Done(JsonElement shown, string json)
    {
        Matches(shown, SnapshotStatus.Done, 2000, 20).ShouldBeTrue(json);
        shown.GetProperty("table").GetString().ShouldBe("public.items", json);
    }

    /// <summary>The worker's <c>/api/status</c>, or null while it does not answer.</summary>
    private static async Task<JsonElement?> StatusAsync(Worker worker)
    {
        if (ManagementFile.All(new DataDirectory(worker.Data)).FirstOrDefault() is not { } file) { return null; }
        try
        {
            var (code, body) = await ManagementClientSide.GetAsync(file.Url + "/api/status", file.Key);
            return code == 200 ? ManagementClientSide.Json(body) : null;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>The worker's console, logged in with <paramref name="token"/> (an admin token of the shared store), on its Workers page.</summary>
    private static async Task<IPage> LogInAsync(IBrowser browser, Worker worker, string token)
    {
        const string path = "/ui/workers";
        var file = ManagementFile.All(new DataDirectory(worker.Data)).Single();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, BaseURL = file.Url });
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync(path);
        await page.WaitForURLAsync("**/ui/login**");
        await page.FillAsync("#token", token);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(u => u.EndsWith(path, StringComparison.Ordinal));
        return page;
    }

    /// <summary>Reloads the page until snapshot 1's row shows <paramref name="state"/> and <paramref name="rows"/> read; then its cells and progress bar.</summary>
    private static async Task ConsoleRowShowsAsync(IPage page, string state, string rows, string chunks, string percent, string? worker)
    {
        var row = page.Locator("tr[data-snapshot='1']");
        var deadline = DateTime.UtcNow + Patience;
        string text;
        while (true)
        {
            await row.WaitForAsync();
            text = await row.InnerTextAsync();
            if (text.Split('\t').Select(c => c.Trim()).Count(c => c == rows) == (rows == "2,000" ? 2 : 1) && text.Contains(state, StringComparison.Ordinal)) { break; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, text);
            await Task.Delay(500);
            await page.ReloadAsync();
        }

        var cells = text.Split('\t').Select(c => c.Trim()).ToList();
        cells.ShouldContain("snap/cdc", text);
        cells.ShouldContain(c => c.EndsWith("items", StringComparison.Ordinal), text);
        cells.ShouldContain(chunks, text);
        (await row.Locator(".progress").GetAttributeAsync("title")).ShouldBe(percent, text);
        if (worker is not null) { cells.ShouldContain(worker, text); }
    }
}
