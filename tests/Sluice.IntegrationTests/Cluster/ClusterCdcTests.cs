using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// engagement-cdc on three <c>sluice run --cluster</c> workers sharing one metadata store in PostgreSQL, in each way
/// of running CDC: through JetStream (the default: the slot's holder publishes the changes, every worker runs the
/// enrichment and sinks on the partitions it leases) and <c>SLUICE_CLUSTER_CDC=holder</c> (the holder runs the whole
/// pipeline, the others stand by on its advisory lock). A writer inserts throughout; the slot's holder is SIGKILLed;
/// another worker takes the slot within 10 s of the kill (the bound; 0.6-1.5 s on a quiet machine) and what is written after it reaches the sinks. At the end
/// ClickHouse, Redis and the API hold exactly Postgres's events, checked as the single-process tests check them
/// (<see cref="CdcScenario.AssertExactAsync"/>).
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterCdcTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Theory]
    [InlineData("jetstream")]
    [InlineData("holder")]
    public async Task Engagement_cdc_on_three_workers_goes_on_within_10_s_of_the_slot_holders_SIGKILL_and_every_sink_is_exact(string cdc)
    {
        var holderMode = cdc == "holder";
        // Jobs do not run in cluster mode in this slice: the backfill job is left out of the recipe.
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => y[..y.IndexOf("\njobs:", StringComparison.Ordinal)] + "\n");
        // Through JetStream, on the test's own JetStream cluster: a stream is named by its recipe, and changes another
        // run left in the shared servers' stream must not be read here.
        await using var nats = holderMode ? null : await NatsTestCluster.StartAsync(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, "nats")).FullName);
        var cluster = "ccdc" + scenario.Id;
        // Through JetStream, the default, with SLUICE_CLUSTER_CDC unset; a holder publishes nothing to NATS, but cluster
        // mode still wants the servers named (the services').
        var env = ClusterEnvironment.Cdc(cluster, scenario.ProcessEnvironment, nats, holderMode ? "holder" : null);

        await scenario.InsertAsync(300, seed: 1);
        var workers = Enumerable.Range(0, 3).Select(i => new Worker(Directory.CreateDirectory(Path.Combine(scenario.DataRoot, $"worker{i}")).FullName, env)).ToList();
        using var stopWriting = new CancellationTokenSource();
        Task? writer = null;
        try
        {
            foreach (var w in workers) { await w.WaitStartedAsync(); }
            writer = Task.Run(async () =>
            {
                for (var i = 0; !stopWriting.IsCancellationRequested; i++)
                {
                    await scenario.InsertAsync(20, rowsPerStatement: 5, seed: 100 + i);
                    await Task.Delay(100);
                }
            });

            // Through JetStream the sinks' work is spread: more than one worker reads changes (one of them the holder).
            await CdcScenario.WaitUntilAsync(async () => (holderMode || (await ReadingAsync(workers)).Count >= 2) && await scenario.ClickHouseCountAsync() >= 600, Patience,
                async () => $"workers reading: {(await ReadingAsync(workers)).Count}, clickhouse {await scenario.ClickHouseCountAsync()}\n{Stderr(workers)}");

            var holder = await HolderAsync(scenario.Pg, workers);
            var standBys = workers.Where(w => w != holder).ToList();
            if (holderMode)
            {
                foreach (var w in standBys)
                {
                    var pipeline = await w.PipelineAsync();
                    pipeline.GetProperty("state").GetString().ShouldBe("running", "a stand-by is a running pipeline");
                    pipeline.GetProperty("condition").GetString().ShouldStartWith($"stand-by for slot {scenario.Slot}");
                    pipeline.GetProperty("recordsIn").GetInt64().ShouldBe(0, "a stand-by reads nothing");
                    // Polled: one /healthz may time out on a loaded machine.
                    await CdcScenario.WaitUntilAsync(w.HealthyAsync, Patience, () => Task.FromResult("a stand-by is healthy\n" + w.Process.Stderr));
                }
            }

            var before = await scenario.PgCountAsync();
            var lastBefore = await scenario.ScalarAsync<long>("SELECT coalesce(max(event_id), 0) FROM engagement_events");
            var killedAt = DateTime.UtcNow;
            var killed = Stopwatch.StartNew();
            holder.Kill();
            Worker? next = null;
            while (next is null)
            {
                killed.Elapsed.ShouldBeLessThan(Patience, $"no worker took the slot after its holder's SIGKILL\n{Stderr(workers)}");
                if (holderMode)
                {
                    // The holder runs the pipeline: the new one is the stand-by that reads its first batch.
                    foreach (var w in standBys)
                    {
                        if ((await w.PipelineAsync()).GetProperty("recordsIn").GetInt64() > 0) { next = w; }
                    }
                }
                else if (await HolderAsync(scenario.Pg, workers) is var now && now != holder)
                {
                    next = now;
                }

                if (next is null) { await Task.Delay(50); }
            }

            var takeOver = killed.Elapsed;
            var measured = holderMode
                ? $"the first batch of the new holder came {takeOver.TotalMilliseconds:0} ms after the SIGKILL of the slot holder at {killedAt:HH:mm:ss.fff}"
                : $"a new worker held the slot {takeOver.TotalMilliseconds:0} ms after the SIGKILL of its holder at {killedAt:HH:mm:ss.fff}";
            // Issue 18 asks for a take-over within 10 s; it takes 0.6-1.5 s on a quiet machine, so the bound has room for CI.
            Console.WriteLine(measured);
            takeOver.ShouldBeLessThanOrEqualTo(TimeSpan.FromSeconds(10), $"{measured}\n{Stderr(workers)}");
            (await HolderAsync(scenario.Pg, workers)).ShouldBe(next, "the worker reading is the one holding the lock");

            // What was written after the kill reaches the sinks through the new holder: its first change, then every
            // change from before the kill (through JetStream, the dead worker's partitions wait for their leases to expire).
            await CdcScenario.WaitUntilAsync(async () => await AfterAsync(scenario, lastBefore) > 0, Patience,
                async () => $"no event after {lastBefore} in clickhouse\n{Stderr(workers)}");
            Console.WriteLine($"the first change written after the kill was in ClickHouse {killed.Elapsed.TotalMilliseconds:0} ms after it");
            await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() > before, Patience,
                async () => $"clickhouse {await scenario.ClickHouseCountAsync()}, postgres at the kill {before}\n{Stderr(workers)}");
            Console.WriteLine($"every change from before the kill was in ClickHouse {killed.Elapsed.TotalMilliseconds:0} ms after it");
            await stopWriting.CancelAsync();
            await writer;
            await scenario.WaitForAllSinksAsync(Patience);
            await scenario.AssertExactAsync();
            standBys.ShouldAllBe(w => !w.Process.HasExited, Stderr(workers));
        }
        finally
        {
            await stopWriting.CancelAsync();
            if (writer is not null) { await writer.ContinueWith(_ => { }, TaskScheduler.Default); }
            foreach (var w in workers) { w.Dispose(); }
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", admin);
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>ClickHouse's events after <paramref name="eventId"/> (-1 while it does not answer).</summary>
    private static async Task<long> AfterAsync(CdcScenario scenario, long eventId)
    {
        try
        {
            return long.Parse(await scenario.ClickHouseAsync($"SELECT count() FROM {scenario.ClickHouseDb}.events_enriched WHERE event_id > {eventId}"), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is HttpRequestException or ShouldAssertException)
        {
            return -1;
        }
    }

    /// <summary>The workers that read changes (their pipeline's records in).</summary>
    internal static async Task<List<Worker>> ReadingAsync(IEnumerable<Worker> workers)
    {
        var reading = new List<Worker>();
        foreach (var w in workers)
        {
            if (!w.Process.HasExited && (await w.PipelineAsync()).GetProperty("recordsIn").GetInt64() > 0) { reading.Add(w); }
        }

        return reading;
    }

    [Fact]
    public async Task A_cdc_pipeline_in_cluster_mode_without_the_shared_metadata_store_is_refused_naming_the_variable()
    {
        using var temp = new TempFolder("sluice-ccdc");
        using var run = SluiceProcess.Start(temp.Path, new Dictionary<string, string> { ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = "" },
            "run", "engagement-cdc", "--cluster");
        (await run.WaitAsync(Patience)).ShouldNotBe(0, run.Stderr);
        run.Stderr.ShouldContain("engagement-cdc: pipeline 'cdc': a postgres_cdc pipeline in cluster mode needs the shared metadata store (SLUICE_CLUSTER_POSTGRES)");
    }

    internal static string Stderr(IEnumerable<Worker> workers) => string.Join("\n", workers.Select(w => $"worker {w.Process.Pid}: " + string.Join('\n', w.Process.Stderr.Split('\n').TakeLast(20))));

    /// <summary>
    /// The live worker whose session holds the slot's advisory lock in <paramref name="pg"/>'s database, by the process id
    /// its application name carries. Only that database's locks count: other tests' slots may be held at the same time.
    /// A killed holder's session may linger until the server notices; the live worker's is the holder.
    /// </summary>
    internal static async Task<Worker> HolderAsync(PostgresConnectionOptions pg, IReadOnlyList<Worker> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            await using (var connection = new NpgsqlConnection(pg.ConnectionString("sluice-test")))
            {
                await connection.OpenAsync();
                await using var cmd = new NpgsqlCommand(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " +
                    "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND a.application_name LIKE 'sluice-cdc-lease %'", connection);
                var names = new List<string>();
                await using (var r = await cmd.ExecuteReaderAsync())
                {
                    while (await r.ReadAsync()) { names.Add(r.GetString(0)); }
                }

                names.Count.ShouldBeLessThanOrEqualTo(1, "one session holds the slot's lock");
                var pids = names.Select(n => int.Parse(n[(n.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture)).ToHashSet();
                if (workers.Where(w => !w.Process.HasExited && pids.Contains(w.Process.Pid)).ToList() is [var holder]) { return holder; }
            }

            DateTime.UtcNow.ShouldBeLessThan(deadline, "no live worker holds the slot's lock");
            await Task.Delay(100);
        }
    }

    /// <summary>One <c>sluice run --cluster</c> process on its own data folder and a port of its own; the metadata store is the shared one.</summary>
    internal sealed class Worker : IDisposable
    {
        private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
        private readonly string _data;
        private ManagementFile? _management;

        public Worker(string data, Dictionary<string, string> env, string recipe = "engagement-cdc")
        {
            _data = data;
            // Port 0 (SluiceProcess's default): the worker's address is read from its management file, so no port is picked to race for.
            Process = SluiceProcess.Start(data, env, "run", recipe, "--cluster");
        }

        public SluiceProcess Process { get; }

        /// <summary>Its data folder (a worker started again on it is the same worker).</summary>
        public string Data => _data;

        public async Task WaitStartedAsync()
        {
            var deadline = DateTime.UtcNow + Patience;
            while ((_management = ManagementFile.All(new DataDirectory(_data)).FirstOrDefault()) is null || !await HealthyAsync())
            {
                if (Process.HasExited) { throw new InvalidOperationException($"worker exited: {Process.Stderr}"); }
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"worker not started within {Patience.TotalSeconds:0} s: {Process.Stderr}");
                await Task.Delay(100);
            }
        }

        public async Task<bool> HealthyAsync()
        {
            try
            {
                using var response = await Http.GetAsync(new Uri(new Uri(_management!.Url), "/healthz"));
                return response.IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }

        /// <summary>The pipeline's entry of the worker's <c>/api/status</c>.</summary>
        public async Task<JsonElement> PipelineAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(_management!.Url), "/api/status"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _management.Key);
            using var response = await Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            response.IsSuccessStatusCode.ShouldBeTrue(body);
            return JsonDocument.Parse(body).RootElement.GetProperty("pipelines")[0].Clone();
        }

        public void Kill() => Process.Kill();

        public void Dispose() => Process.Dispose();
    }
}
