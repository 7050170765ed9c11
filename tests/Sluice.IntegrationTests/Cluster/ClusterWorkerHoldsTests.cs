using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Npgsql;
using Sluice.Cluster;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Status;
using Sluice.Hosting;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The slot's and a file claim's holds as running workers publish them: three <c>sluice run --cluster</c> workers of a
/// recipe with a <c>postgres_cdc</c> pipeline (one worker reads the slot) and a files source over a shared drop folder
/// (a worker claims each file). <c>sluice status --cluster --format json</c> and the workers' <c>/api/status</c> show
/// the slot under the worker reading it, and it moves to another worker after that one's SIGKILL. (A file claim's hold
/// was checked here too, by a 300,000-row file killed mid-ingest; on a quiet machine the file landed in 5 s, before the
/// status showed its claim, so that half was timing, not a test. File claims' holds are shown by
/// <see cref="ClusterHoldsTests"/>, their take-over by <see cref="ClusterFilesTests"/> and ClusterFilesToSinksTests.)
/// The recipe's name is the test's own: JetStream streams are named by recipe, not cluster, and stay on the shared
/// NATS after the test, so a fixed name met the last run's consumers.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterWorkerHoldsTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-worker-holds");
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];

    private string Database => "wh_" + _id;

    private string Slot => "wh_slot_" + _id;

    public void Dispose()
    {
        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Status_shows_the_slot_under_the_worker_reading_it_and_under_another_after_its_SIGKILL()
    {
        await SqlAsync(ServerSettings.PostgresConnectionString, $"CREATE DATABASE {Database}");
        var source = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Database = Database }.ConnectionString;
        await SqlAsync(source, "CREATE TABLE items (id integer PRIMARY KEY, v text NOT NULL); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 50) g");
        var shared = Directory.CreateDirectory(_temp.Sub("shared")).FullName;
        var recipe = WriteRecipe();
        var env = ClusterEnvironment.Of(_fixture.Cluster, ClusterEnvironment.Postgres(Database));
        env["SLUICE_CLUSTER_FOLDER"] = shared;
        env["SLUICE_CLUSTER_ACK_WAIT"] = "4"; // the file claims' lease
        var workers = new List<SluiceProcess>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                // Port 0 (SluiceProcess's default): a worker's address is read from its management file.
                workers.Add(SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub($"worker{i}")).FullName, env, "run", recipe, "--cluster"));
            }

            // The slot: one worker reads it; status --cluster and that worker's /api/status name it there. Each is polled
            // until it shows the holder the registry showed: on a loaded machine a probe may come before the next beat.
            var reader = await HolderAsync(workers, "slot", Slot);
            await StatusShowsAsync(env, reader, "slot", Slot, workers);
            await ApiShowsAsync(workers.IndexOf(reader), reader, "slot", Slot, workers);

            reader.Kill();
            var next = await HolderAsync(workers.Where(w => w != reader).ToList(), "slot", Slot);
            await StatusShowsAsync(env, next, "slot", Slot, workers);
            await ApiShowsAsync(workers.IndexOf(next), next, "slot", Slot, workers);
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            NpgsqlConnection.ClearAllPools();
            await DropAsync();
        }
    }

    private string WriteRecipe()
    {
        var recipe = RecipeVariant.Create(_temp, "vehicle-files");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), $"""
            name: worker-holds-{_id}
            pipelines:
              cdc:
                source:
                  type: postgres_cdc
                  slot: {Slot}
                  publication: wh_pub_{_id}
                  tables:
                    items: {"{"}on_update: emit{"}"}
                sinks:
                  - type: postgres
                    schema: wh_sink_{_id}
                    keys:
                      items: [id]
              ingest:
                source:
                  type: files
                  folder: vehicle-files
                  file_types: filetypes
                  poll_interval: 200ms
                  stable_after: 200ms
            """);
        return recipe;
    }

    /// <summary>The one live worker of <paramref name="among"/> the registry shows holding <paramref name="item"/>, once there is one.</summary>
    private Task<SluiceProcess> HolderAsync(IReadOnlyList<SluiceProcess> among, string kind, string item) => UntilAsync(() =>
    {
        var views = WorkerRegistry.List(_fixture.Store, TimeProvider.System);
        var holders = among.Where(w => !w.HasExited && views.Any(v => v.Pid == w.Pid && v.Health is "green" or "red" && Held(v, kind).Contains(item))).ToList();
        return Task.FromResult((holders.Count == 1, holders.FirstOrDefault()!));
    }, $"one worker holding {kind} {item}", among);

    private static IReadOnlyList<string> Held(WorkerView view, string kind) => view.Holds.TryGetValue(kind, out var items) ? items : [];

    /// <summary>
    /// <c>sluice status --cluster --format json</c>, from a folder no worker uses, lists <paramref name="item"/> under
    /// <paramref name="holder"/> and under no other running worker (a killed one keeps its last holds in its entry, lost).
    /// </summary>
    private async Task StatusShowsAsync(IDictionary<string, string> env, SluiceProcess holder, string kind, string item, IReadOnlyList<SluiceProcess> workers)
    {
        await UntilAsync(async () =>
        {
            using var status = SluiceProcess.StartIn(_temp.Path, _temp.Sub("elsewhere"), env, "status", "--cluster", "--format", "json");
            (await status.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, status.Stderr);
            var listed = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("workers").EnumerateArray()
                .Where(w => w.GetProperty("holds").TryGetProperty(kind, out var items) && items.EnumerateArray().Any(i => i.GetString() == item))
                .Select(w => w.GetProperty("pid").GetInt32()).ToList();
            var running = workers.Where(w => !w.HasExited).Select(w => w.Pid).ToHashSet();
            return (listed.Contains(holder.Pid) && !listed.Any(p => p != holder.Pid && running.Contains(p)), true);
        }, $"status --cluster listing {kind} {item} under pid {holder.Pid} alone", workers);
    }

    /// <summary>The <c>/api/status</c> of worker number <paramref name="asked"/> shows <paramref name="holder"/> holding <paramref name="item"/>, and nothing else of <paramref name="kind"/>.</summary>
    private async Task ApiShowsAsync(int asked, SluiceProcess holder, string kind, string item, IReadOnlyList<SluiceProcess> workers) =>
        await UntilAsync(async () => ((await ApiHoldsAsync(asked, holder.Pid, kind)).SequenceEqual([item]), true), $"worker {asked}'s /api/status showing pid {holder.Pid} holding {kind} {item}", workers);

    /// <summary>What worker <paramref name="pid"/> holds of <paramref name="kind"/>, as the <c>/api/status</c> of worker number <paramref name="asked"/> shows it (nothing while it does not answer or list it).</summary>
    private async Task<IReadOnlyList<string>> ApiHoldsAsync(int asked, int pid, string kind)
    {
        var management = ManagementFile.All(new DataDirectory(_temp.Sub($"worker{asked}"))).First();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(management.Url), "/api/status"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", management.Key);
        try
        {
            using var response = await Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            response.IsSuccessStatusCode.ShouldBeTrue(body);
            var worker = JsonDocument.Parse(body).RootElement.GetProperty("workers").EnumerateArray().SingleOrDefault(w => w.GetProperty("pid").GetInt32() == pid);
            return worker.ValueKind == JsonValueKind.Object && worker.GetProperty("holds").TryGetProperty(kind, out var items) ? items.EnumerateArray().Select(i => i.GetString()!).ToList() : [];
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return []; // a slow answer on a loaded machine: asked again
        }
    }

    private async Task DropAsync()
    {
        // The slot first (a database with a logical slot cannot be dropped); its last reader may take a moment to go.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await SqlAsync(ServerSettings.PostgresConnectionString, $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{Slot}'");
                break;
            }
            catch (PostgresException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }

        await SqlAsync(ServerSettings.PostgresConnectionString, $"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");
        await SqlAsync(ServerSettings.PostgresConnectionString, $"DROP SCHEMA IF EXISTS wh_sink_{_id} CASCADE");
    }

    private static async Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, IReadOnlyList<SluiceProcess> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var (found, value) = await probe();
            if (found) { return value; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what}: not within {Patience.TotalSeconds:0} s\n{string.Join("\n---\n", workers.Select(w => string.Join('\n', w.Stderr.Split('\n').TakeLast(15))))}");
            await Task.Delay(100);
        }
    }

    private static Task SqlAsync(string connection, string sql) => ClusterProbes.ExecuteAsync(connection, sql);
}
