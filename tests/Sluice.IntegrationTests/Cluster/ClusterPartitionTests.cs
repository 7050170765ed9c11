using System.Globalization;
using System.Text;
using Npgsql;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// Per-key order in cluster mode with partition leases in the shared metadata store: three workers of a stream whose
/// sink is a "latest per key" PostgreSQL table (keyed by tenant and key). Each tenant's client sends versions 1..N of
/// its keys one request after the other, to the workers in turn, so JetStream holds one key's versions in their order.
/// A trigger on the table records every write that replaces a newer version by an older one: what a worker writing a
/// partition out of order (a redelivery after newer events, a paused worker waking up) makes visible.
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterPartitionTests
{
    private const int Tenants = 8;
    private const int Keys = 40;
    private const int Versions = 40;

    [Fact]
    public async Task Versions_of_one_key_land_in_order_while_workers_are_killed_and_restarted()
    {
        await using var cluster = await KeyedCluster.StartAsync();
        var total = Tenants * Versions;
        var senders = cluster.SendAll();
        await cluster.WaitDoneAsync(total / 4);
        // Each time a worker that holds partitions right then is killed: the first worker up may hold them all (CI saw
        // both killed workers holding none, so nothing was taken over).
        var first = await HolderAsync(cluster);
        first.Kill();
        await cluster.WaitDoneAsync(total * 9 / 20);
        first.Start();
        await cluster.WaitDoneAsync(total * 3 / 5);
        var second = await HolderAsync(cluster);
        second.Kill();
        await cluster.WaitDoneAsync(total * 4 / 5);
        second.Start();
        await senders;

        await cluster.ShouldHoldTheLastVersionsAsync();
        (await KeyedCluster.ScalarAsync($"SELECT count(*) FROM {cluster.MetaSchema}.partition_leases WHERE token > 1")).ShouldBeGreaterThan(0, "a killed worker's partitions were taken over by another (a newer lease token)");
    }

    /// <summary>A live worker that holds partitions as asked right now.</summary>
    private static async Task<ClusterWorker> HolderAsync(KeyedCluster cluster)
    {
        ClusterWorker? holder = null;
        await UntilAsync(async () =>
        {
            foreach (var w in cluster.Workers.Where(w => w.Process is { HasExited: false }))
            {
                if (await KeyedCluster.ScalarAsync($"SELECT count(*) FROM {cluster.MetaSchema}.partition_leases WHERE owner LIKE '%/{w.Process!.Pid}/%'") > 0)
                {
                    holder = w;
                    return true;
                }
            }

            return false;
        }, TimeSpan.FromSeconds(90), async () => "a worker holding partitions\n" + await cluster.PartitionsAsync());
        return holder!;
    }

    [Fact]
    public async Task A_paused_worker_and_a_stopped_nats_node_cause_no_split_brain_and_no_stale_write()
    {
        await using var cluster = await KeyedCluster.StartAsync();
        var total = Tenants * Versions;
        var senders = cluster.SendAll();
        await cluster.WaitDoneAsync(total / 3);
        // The partitions shared out (the first worker to start may take them all, then give the others their share once
        // its batches of them are acknowledged): every worker holds some, and the one paused is one of them.
        await UntilAsync(async () => cluster.Workers.All(w => w.Process is { HasExited: false }) &&
                await KeyedCluster.ScalarAsync($"SELECT count(DISTINCT split_part(owner, '/', 2)) FROM {cluster.MetaSchema}.partition_leases WHERE owner IS NOT NULL") == 3,
            TimeSpan.FromSeconds(90), async () => "every worker holding partitions\n" + await cluster.PartitionsAsync());
        // The worker to pause: one that holds partitions as asked right before the pause (with 5 s leases, what a worker
        // held when all three were seen holding some may have moved since on a loaded machine).
        var (paused, held) = (cluster.Workers[0], 0L);
        await UntilAsync(async () =>
        {
            foreach (var w in cluster.Workers)
            {
                (paused, held) = (w, await KeyedCluster.ScalarAsync($"SELECT count(*) FROM {cluster.MetaSchema}.partition_leases WHERE owner LIKE '%/{w.Process!.Pid}/%'"));
                if (held > 0 && !w.Process.HasExited) { return true; }
            }

            return false;
        }, TimeSpan.FromSeconds(90), async () => "a worker holding partitions\n" + await cluster.PartitionsAsync());
        var pid = paused.Process!.Pid;
        await cluster.AvoidAsync(paused);
        paused.Process.Signal(19); // SIGSTOP: alive, holding its leases and the events it read, and silent
        cluster.Nats.Kill(0);
        // Its heartbeat and leases expire, and the two others take every partition it held (a new token each).
        await UntilAsync(async () => await KeyedCluster.ScalarAsync($"SELECT count(*) FROM {cluster.MetaSchema}.partition_leases WHERE owner LIKE '%/{pid}/%'") == 0,
            TimeSpan.FromSeconds(60), async () => "the paused worker's partitions taken over by the others\n" + await cluster.PartitionsAsync());
        cluster.Nats.Start(0);
        await cluster.WaitDoneAsync(total * 2 / 3);

        paused.Process.Signal(18); // SIGCONT: it must find its leases lost, and write nothing of what it held
        await UntilAsync(() => Task.FromResult(paused.Process.HasExited || paused.Process.Stderr.Contains("lost partition", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(60), async () => "the resumed worker noticing its lost leases\n" + await cluster.PartitionsAsync());
        cluster.Resume();
        await senders;
        // Not waiting for node 0's /healthz: with consumers deleted and created while it was away, a run here saw it
        // catch up for more than 60 s, which is JetStream's own business; what the test asserts is the sink's state.

        // No stale write: the trigger saw no older version put over a newer one, and every key ends at its last version.
        await cluster.ShouldHoldTheLastVersionsAsync();
        (await KeyedCluster.ScalarAsync($"SELECT count(*) FROM {cluster.MetaSchema}.partition_leases WHERE token > 1")).ShouldBeGreaterThanOrEqualTo(held, "each partition the paused worker held has a newer lease");
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan within, Func<Task<string>> what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) { DateTime.UtcNow.ShouldBeLessThan(deadline, $"not within {within.TotalSeconds:0} s: {await what()}"); }
            await Task.Delay(100);
        }
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"not within {within.TotalSeconds:0} s: {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>Three workers on a test's own NATS cluster and a shared metadata schema of their own, a writer token per tenant, and the clients.</summary>
    private sealed class KeyedCluster : IAsyncDisposable
    {
        private readonly TempFolder _temp;
        private readonly Dictionary<int, string> _tokens = [];
        private int _done;

        private KeyedCluster(TempFolder temp, NatsTestCluster nats) => (_temp, Nats) = (temp, nats);

        public NatsTestCluster Nats { get; }

        public string Name { get; } = "c18_" + Guid.NewGuid().ToString("N")[..8];

        public string Schema => Name + "_sink";

        public string MetaSchema => "sluice_meta_" + Name;

        public ClusterWorker[] Workers { get; } = new ClusterWorker[3];

        /// <summary>A worker not to send to (a paused one would hold each request until the client's timeout).</summary>
        public ClusterWorker? Paused { get; private set; }

        private readonly int[] _inFlight = new int[3];

        /// <summary>
        /// Sends to <paramref name="worker"/> no more, and returns once no request to it is in flight. A request it held
        /// through a pause (SIGSTOP) would be given up by its client and sent to another worker, then stored by the paused
        /// worker when it resumes: an older version after the newer ones, which the sink rightly keeps as the last.
        /// </summary>
        public async Task AvoidAsync(ClusterWorker worker)
        {
            Paused = worker;
            var index = Array.IndexOf(Workers, worker);
            await UntilAsync(() => Task.FromResult(Volatile.Read(ref _inFlight[index]) == 0), TimeSpan.FromSeconds(60), "the requests in flight to the worker to pause answered");
        }

        public void Resume() => Paused = null;

        public static async Task<KeyedCluster> StartAsync()
        {
            var temp = new TempFolder("sluice-partitions");
            var cluster = new KeyedCluster(temp, await NatsTestCluster.StartAsync(temp.Sub("nats")));
            await cluster.StartWorkersAsync();
            return cluster;
        }

        private async Task StartWorkersAsync()
        {
            var recipe = Directory.CreateDirectory(_temp.Sub("recipe")).FullName;
            Directory.CreateDirectory(Path.Combine(recipe, "schemas"));
            await File.WriteAllTextAsync(Path.Combine(recipe, "schemas", "versions.v1.yaml"), "version: 1\nfields:\n  key: string\n  version: integer\n  ts: timestamp\n");
            await File.WriteAllTextAsync(Path.Combine(recipe, "recipe.yaml"), $"""
                name: keyed-versions
                pipelines:
                  versions:
                    source:
                      type: http
                      stream: versions
                      table: versions
                      schemas:
                        1: schemas/versions.v1.yaml
                      time_field: ts
                      batch_linger: 50ms
                    sinks:
                      - type: postgres
                        schema: {Schema}
                        connection: "{ServerSettings.PostgresConnectionString}"
                        keys:
                          versions: [tenant_id, key]
                """);
            var env = new Dictionary<string, string>
            {
                ["SLUICE_CLUSTER_NATS"] = Nats.Urls,
                ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString,
                ["SLUICE_CLUSTER_NAME"] = Name,
                ["SLUICE_CLUSTER_PARTITIONS"] = "12",
                ["SLUICE_CLUSTER_LEASE"] = "5",
                ["SLUICE_CLUSTER_ACK_WAIT"] = "5",
                ["SLUICE_CLUSTER_ORDER"] = "key", // the default, set so a variable of the environment running the tests cannot change it
            };
            var first = Directory.CreateDirectory(_temp.Sub("worker0")).FullName;
            for (var t = 0; t < Tenants; t++)
            {
                // The shared store's tokens: created once, good on every worker.
                using var created = SluiceProcess.Start(first, env, "tokens", "create", "--role", "writer", "--tenant", $"t{t}", "--cluster");
                (await created.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, created.Stderr);
                _tokens[t] = created.Stdout.Trim().Split('\n')[^1];
            }

            for (var i = 0; i < 3; i++)
            {
                Workers[i] = new ClusterWorker(Directory.CreateDirectory(_temp.Sub($"worker{i}")).FullName, FreePort.Next(), _tokens[0], recipe, env, "versions");
                Workers[i].Start();
            }

            foreach (var w in Workers) { await w.WaitHealthyAsync(); }
        }

        /// <summary>Every tenant's versions 1..N of its keys, one request after the other (each only once the last was answered 202), to the workers in turn.</summary>
        public Task SendAll() => Task.WhenAll(Enumerable.Range(0, Tenants).Select(t => Task.Run(() => SendAsync(t))));

        private async Task SendAsync(int tenant)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
            for (var v = 1; v <= Versions; v++)
            {
                var body = Encoding.UTF8.GetBytes("[" + string.Join(",", Enumerable.Range(0, Keys).Select(k =>
                    $$"""{"schema_version":1,"key":"k{{k}}","version":{{v}},"ts":"2025-11-08T06:00:{{v % 60:00}}Z"}""")) + "]");
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
                for (var attempt = 0; ; attempt++)
                {
                    var index = (tenant + v + attempt) % Workers.Length;
                    var w = Workers[index];
                    // Counted in flight before Paused is read: AvoidAsync sets it, then waits for the count to reach 0.
                    Interlocked.Increment(ref _inFlight[index]);
                    bool accepted;
                    try
                    {
                        accepted = w != Paused && await w.TryPostAsync(http, body, _tokens[tenant]);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _inFlight[index]);
                    }

                    if (accepted) { break; }
                    DateTime.UtcNow.ShouldBeLessThan(deadline, $"tenant t{tenant} version {v} not accepted within 120 s: {string.Join("; ", Workers.Select(x => x.LastFailure))}\n{string.Join("\n", Workers.Select(x => x.Stderr))}");
                    await Task.Delay(100);
                }

                if (v == 1) { await WatchRegressionsAsync(); }
                Interlocked.Increment(ref _done);
            }
        }

        private int _watching;

        /// <summary>Once the sink created its table: a trigger recording every update that puts an older version in place of a newer one.</summary>
        private async Task WatchRegressionsAsync()
        {
            if (Interlocked.Exchange(ref _watching, 1) == 1) { return; }
            await UntilAsync(async () => await ScalarAsync($"SELECT count(*) FROM pg_tables WHERE schemaname = '{Schema}' AND tablename = 'versions'") == 1, TimeSpan.FromSeconds(60), "the sink's table");
            await ExecuteAsync($"""
                CREATE TABLE {Schema}.regressions (tenant_id text, key text, had bigint, got bigint);
                CREATE FUNCTION {Schema}.regression() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.version < OLD.version THEN INSERT INTO {Schema}.regressions VALUES (NEW.tenant_id, NEW.key, OLD.version, NEW.version); END IF;
                  RETURN NEW;
                END $$;
                CREATE TRIGGER regression BEFORE UPDATE ON {Schema}.versions FOR EACH ROW EXECUTE FUNCTION {Schema}.regression();
                """);
        }

        public async Task WaitDoneAsync(int requests) =>
            await UntilAsync(() => Task.FromResult(Volatile.Read(ref _done) >= requests), TimeSpan.FromSeconds(120),
                $"{requests} requests accepted: {string.Join("; ", Workers.Select(x => x.LastFailure))}");

        /// <summary>Who holds which partition, and what each worker said of its partitions, consumes and sinks: what a stall needs to be told.</summary>
        public async Task<string> PartitionsAsync() =>
            $"leases: {await TextAsync($"SELECT string_agg(part || ': ' || coalesce(owner, '-') || ' t' || token || ' until ' || expires_at, ', ' ORDER BY part) FROM {MetaSchema}.partition_leases")}\n" +
            string.Join("\n", Workers.Select(w => $"worker pid {w.Process?.Pid}{(w.Process?.HasExited == true ? " (exited)" : "")}:\n" + string.Join('\n', (w.Process?.Stderr ?? "").Split('\n')
                .Where(l => l.Contains("Nats", StringComparison.Ordinal) || l.Contains("ink", StringComparison.Ordinal) || l.Contains("fail", StringComparison.OrdinalIgnoreCase)).TakeLast(40))));

        /// <summary>Every key of every tenant at its last version, and no write ever put an older version over a newer one.</summary>
        public async Task ShouldHoldTheLastVersionsAsync()
        {
            var expected = Tenants * Keys;
            var ok = false;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (!ok && DateTime.UtcNow < deadline)
            {
                ok = await ScalarAsync($"SELECT count(*) FROM {Schema}.versions WHERE version = {Versions}") == expected;
                if (!ok) { await Task.Delay(200); }
            }

            var regressions = await ScalarAsync($"SELECT count(*) FROM {Schema}.regressions");
            var sample = await TextAsync($"SELECT string_agg(tenant_id || '/' || key || ': ' || had || ' -> ' || got, ', ') FROM (SELECT * FROM {Schema}.regressions LIMIT 10) r");
            regressions.ShouldBe(0, $"older versions written over newer ones: {sample}");
            (await ScalarAsync($"SELECT count(*) FROM {Schema}.versions")).ShouldBe(expected);
            ok.ShouldBeTrue($"every key at version {Versions}: {await ScalarAsync($"SELECT count(*) FROM {Schema}.versions WHERE version = {Versions}")} of {expected}; " +
                $"behind: {await TextAsync($"SELECT string_agg(tenant_id || '/' || key || ' at ' || version || ' (_offset ' || _offset || ')', ', ') FROM (SELECT * FROM {Schema}.versions WHERE version < {Versions} ORDER BY tenant_id, key LIMIT 20) v")}; " +
                $"leases: {await TextAsync($"SELECT string_agg(part || ': ' || coalesce(owner, '-') || ' t' || token, ', ' ORDER BY part) FROM {MetaSchema}.partition_leases")}; " +
                $"marks: {await TextAsync($"SELECT string_agg(part || ': t' || token || ' s' || sequence, ', ' ORDER BY part) FROM {Schema}._sluice_partition_marks")}\n" +
                $"{await Nats.JetStreamStateAsync(1)}\n{string.Join("\n", Workers.Select(x => x.Stderr))}");
        }

        public static async Task<long> ScalarAsync(string sql) => Convert.ToInt64(await QueryAsync(sql) ?? 0L, CultureInfo.InvariantCulture);

        public static async Task<string?> TextAsync(string sql) => await QueryAsync(sql) as string;

        private static async Task<object?> QueryAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand(sql, connection);
            var value = await cmd.ExecuteScalarAsync();
            return value is DBNull ? null : value;
        }

        private static async Task ExecuteAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand(sql, connection);
            await cmd.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var w in Workers)
            {
                if (w?.Process is { HasExited: false } p) { p.Signal(18); }
                w?.Dispose();
            }

            await Nats.DisposeAsync();
            await ExecuteAsync($"DROP SCHEMA IF EXISTS {Schema} CASCADE; DROP SCHEMA IF EXISTS {MetaSchema} CASCADE");
            _temp.Dispose();
        }
    }
}
