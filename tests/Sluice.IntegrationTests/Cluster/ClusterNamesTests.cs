using System.Globalization;
using System.Text;
using Npgsql;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The cluster's name in its JetStream names, on the services' NATS cluster: two clusters running one recipe there are
/// independent (each sink gets exactly its own events), their workers started with <c>--port 0</c> and found by the
/// port the registry shows; a stream's consumer deleted mid-stream is made again at once and every acknowledged event
/// lands once; and a stream of the name from before cluster names that still holds events makes the worker refuse to
/// start, naming it.
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterNamesTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private const int EventsPerRequest = 100;

    private readonly PostgresMetadataFixture _a = new();
    private readonly PostgresMetadataFixture _b = new();
    private readonly TempFolder _temp = new("sluice-names");
    private readonly string _recipe = "names-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Generous timeouts: on a loaded machine a connect or a JetStream request may take longer than the client's defaults (2 s, 5 s).</summary>
    private static NatsOpts Opts => new() { Url = NatsUrls, ConnectTimeout = TimeSpan.FromSeconds(30), RequestTimeout = TimeSpan.FromSeconds(30) };

    private static string NatsUrls => Environment.GetEnvironmentVariable("SLUICE_CLUSTER_NATS") is { Length: > 0 } nats ? nats : "nats://127.0.0.1:4222";

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task Two_clusters_running_one_recipe_on_one_nats_each_land_exactly_their_own_events_from_workers_on_port_0()
    {
        var workers = new List<SluiceProcess>();
        try
        {
            var a = await StartClusterAsync(_a, "a", workers);
            var b = await StartClusterAsync(_b, "b", workers);
            var sentA = await SendAsync(a, "a", 20);
            var sentB = await SendAsync(b, "b", 20);
            var landedA = await LandedAsync(Schema(_a), sentA.Count, workers);
            var landedB = await LandedAsync(Schema(_b), sentB.Count, workers);
            landedA.ShouldBe(sentA.Order(StringComparer.Ordinal).ToList(), "cluster a's sink holds exactly cluster a's events");
            landedB.ShouldBe(sentB.Order(StringComparer.Ordinal).ToList(), "cluster b's sink holds exactly cluster b's events");

            await using var nats = new NatsConnection(Opts);
            var js = nats.CreateJetStreamContext();
            var names = new List<string>();
            await foreach (var name in js.ListStreamNamesAsync()) { names.Add(name); }
            names.ShouldContain($"SLUICE_{_a.Cluster}_{_recipe}_events");
            names.ShouldContain($"SLUICE_{_b.Cluster}_{_recipe}_events");
            names.ShouldNotContain($"SLUICE_{_recipe}_events");
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await CleanUpAsync(_a, _b);
        }
    }

    [Fact]
    public async Task A_consumer_deleted_mid_stream_is_made_again_and_every_acknowledged_event_lands_once()
    {
        var workers = new List<SluiceProcess>();
        try
        {
            // The shared consumer (order any) is what this deletes: per-key order's partition consumers are PartitionOwnerTests'.
            var cluster = await StartClusterAsync(_a, "a", workers, ("SLUICE_CLUSTER_MAX_ACK_PENDING", "5000"), ("SLUICE_CLUSTER_ORDER", "any"));
            await using var nats = new NatsConnection(Opts);
            var js = nats.CreateJetStreamContext();
            var stream = $"SLUICE_{_a.Cluster}_{_recipe}_events";
            var consumer = $"{_a.Cluster}_workers";
            var sent = new List<string>(await SendAsync(cluster, "x", 10));
            (await ConsumerAsync(js, stream, consumer, workers)).Info.Config.MaxAckPending.ShouldBe(5000, "SLUICE_CLUSTER_MAX_ACK_PENDING sets the shared consumer's bound");
            // Deleted twice: each time the worker's consume may be between two pull requests, when no 409 comes and
            // only its watch of the consumer tells (ClusterHttpSource.ConsumerWatchEvery).
            for (var round = 1; round <= 2; round++)
            {
                await DeleteConsumerAsync(js, stream, consumer);
                sent.AddRange(await SendAsync(cluster, "y" + round, 10, first: 10 * round));
                var landed = await LandedAsync(Schema(_a), sent.Count, workers);
                landed.ShouldBe(sent.Order(StringComparer.Ordinal).ToList(), $"every acknowledged event once (after deletion {round})");
                (await ConsumerAsync(js, stream, consumer, workers)).Info.Config.MaxAckPending.ShouldBe(5000, "made again as it was");
            }

            var deadline = DateTime.UtcNow + Patience;
            while (!workers[0].Stderr.Contains($"consumer '{consumer}' was deleted while this worker read it; made again", StringComparison.Ordinal))
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, "the worker did not say it made the consumer again (warning 43931)\n" + workers[0].Stderr);
                await Task.Delay(200);
            }
        }
        finally
        {
            foreach (var w in workers) { w.Dispose(); }
            await CleanUpAsync(_a);
        }
    }

    [Fact]
    public async Task A_stream_named_before_cluster_names_that_holds_events_is_refused_at_start_naming_it_and_an_empty_one_is_not()
    {
        var cluster = new ClusterOptions([NatsUrls], 2, 1, TimeSpan.FromSeconds(30)) { Name = _a.Cluster };
        await using var nats = new NatsConnection(Opts);
        var js = nats.CreateJetStreamContext();
        var legacy = $"SLUICE_{_recipe}_events";
        await using var log = new JetStreamLog(cluster, _recipe, new HttpIngestOptions { Stream = "events" });
        try
        {
            await js.CreateStreamAsync(new StreamConfig(legacy, [$"sluice.{_recipe}.events.*"]) { Retention = StreamConfigRetention.Workqueue });
            (await js.PublishAsync($"sluice.{_recipe}.events.0", Encoding.UTF8.GetBytes("left behind"))).EnsureSuccess();

            var refused = await RefusedAsync(log);
            refused.Message.ShouldContain($"JetStream stream {legacy} (named before cluster names were part of stream names) holds 1 event(s)");
            refused.Message.ShouldContain($"nats stream rm {legacy}");
            refused.Message.ShouldContain(log.StreamName);

            await js.PurgeStreamAsync(legacy, new StreamPurgeRequest());
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                try
                {
                    await log.EnsureAsync(CancellationToken.None);
                    break;
                }
                catch (Exception e) when (e is NatsException or TimeoutException && DateTime.UtcNow < deadline)
                {
                    // a loaded machine: the worker's own client (5 s requests) tries again, as ClusterHttpSource does
                    await Task.Delay(500);
                }
            }
            (await js.GetStreamAsync(log.StreamName)).Info.Config.Subjects!.ShouldBe([$"sluice.{_a.Cluster}.{_recipe}.events.*"]);
        }
        finally
        {
            foreach (var name in new[] { legacy, log.StreamName })
            {
                try { await js.DeleteStreamAsync(name); }
                catch (NatsJSApiException) { /* not made */ }
            }
        }
    }

    /// <summary>The refusal of <paramref name="log"/>'s start, trying again while NATS does not answer in time (a loaded machine).</summary>
    private static async Task<FatalException> RefusedAsync(JetStreamLog log)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                await log.EnsureAsync(CancellationToken.None);
                throw new ShouldAssertException("the worker started although the old stream holds an event");
            }
            catch (FatalException e)
            {
                return e;
            }
            catch (Exception e) when (e is NatsException or TimeoutException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    /// <summary>One worker of the recipe in <paramref name="fixture"/>'s cluster on <c>--port 0</c>, and the port the registry shows for it, once that port answers.</summary>
    private async Task<(int Port, string Token)> StartClusterAsync(PostgresMetadataFixture fixture, string tag, List<SluiceProcess> workers, params (string Name, string Value)[] extra)
    {
        var env = Env(fixture);
        foreach (var (name, value) in extra) { env[name] = value; }
        var recipe = WriteRecipe(tag, Schema(fixture));
        using (var created = SluiceProcess.StartIn(_temp.Path, _temp.Sub("admin-" + tag), env, "tokens", "create", "--role", "writer", "--tenant", "acme", "--cluster"))
        {
            (await created.WaitAsync(Patience)).ShouldBe(0, created.Stderr);
            var token = created.Stdout.Trim().Split('\n')[^1];
            var worker = SluiceProcess.Start(Directory.CreateDirectory(_temp.Sub("worker-" + tag)).FullName, env, "run", recipe, "--cluster", "--port", "0");
            workers.Add(worker);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                worker.HasExited.ShouldBeFalse(worker.Stderr);
                var port = WorkerRegistry.List(fixture.Store, TimeProvider.System).FirstOrDefault(w => w.Pid == worker.Pid)?.Port ?? 0;
                if (port > 0)
                {
                    try
                    {
                        using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"));
                        if (response.IsSuccessStatusCode) { return (port, token); }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        // the registry has the port before the worker is healthy
                    }
                }

                DateTime.UtcNow.ShouldBeLessThan(deadline, $"worker of cluster {tag}: the registry shows port {port}, not one that answers, after {Patience.TotalSeconds:0} s\n{worker.Stderr}");
                await Task.Delay(200);
            }
        }
    }

    /// <summary>The consumer, once the worker has made it.</summary>
    private static async Task<INatsJSConsumer> ConsumerAsync(INatsJSContext js, string stream, string consumer, List<SluiceProcess> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                return await js.GetConsumerAsync(stream, consumer);
            }
            catch (Exception e) when (e is NatsJSApiException { Error.Code: 404 } or NatsJSApiNoResponseException)
            {
                // Not made again yet, or (a loaded machine) no answer in time: asked again.
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"no consumer {consumer} on {stream} after {Patience.TotalSeconds:0} s ({e.Message})\n{string.Join("\n", workers.Select(w => w.Stderr))}");
                await Task.Delay(200);
            }
        }
    }

    /// <summary>
    /// Deletes the consumer. JetStream may delete it and its answer be lost on a loaded machine (CI: "No API response
    /// received from the server"): asked again, and "not found" then means the first request deleted it.
    /// </summary>
    private static async Task DeleteConsumerAsync(INatsJSContext js, string stream, string consumer)
    {
        var deadline = DateTime.UtcNow + Patience;
        for (var asked = 0; ; asked++)
        {
            try
            {
                await js.DeleteConsumerAsync(stream, consumer);
                return;
            }
            catch (NatsJSApiException e) when (e.Error.Code == 404 && asked > 0)
            {
                return;
            }
            catch (NatsJSApiNoResponseException)
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"JetStream did not answer the deletion of consumer {consumer} on {stream} within {Patience.TotalSeconds:0} s");
            }
        }
    }

    /// <summary>Sends <paramref name="requests"/> requests of distinct keys (<paramref name="tag"/>-request-event), each until a 202; the keys acknowledged.</summary>
    private async Task<List<string>> SendAsync((int Port, string Token) worker, string tag, int requests, int first = 0)
    {
        var client = new ClusterWorker(_temp.Path, worker.Port, worker.Token, "", new Dictionary<string, string>(), "events");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        var sent = new List<string>();
        for (var r = first; r < first + requests; r++)
        {
            var keys = Enumerable.Range(0, EventsPerRequest).Select(i => $"{tag}-{r}-{i}").ToList();
            var body = Encoding.UTF8.GetBytes("[" + string.Join(',', keys.Select(k => $$"""{"schema_version":1,"key":"{{k}}","ts":"2025-11-08T10:00:00Z"}""")) + "]");
            var deadline = DateTime.UtcNow + Patience;
            while (!await client.TryPostAsync(http, body))
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"request {tag}-{r} not accepted within {Patience.TotalSeconds:0} s: {client.LastFailure}");
                await Task.Delay(200);
            }

            sent.AddRange(keys);
        }

        return sent;
    }

    /// <summary>The sink's keys, in order, once it holds <paramref name="expected"/> rows (or more: the test then fails on the difference).</summary>
    private static async Task<List<string>> LandedAsync(string schema, int expected, List<SluiceProcess> workers)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var keys = await KeysAsync(schema);
            if (keys.Count >= expected) { return keys; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{schema}: {keys.Count} of {expected} events after {Patience.TotalSeconds:0} s\n{string.Join("\n", workers.Select(w => w.Stderr))}");
            await Task.Delay(250);
        }
    }

    private static async Task<List<string>> KeysAsync(string schema)
    {
        await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT key FROM \"{schema}\".events ORDER BY key COLLATE \"C\"", c);
        var keys = new List<string>();
        try
        {
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) { keys.Add(r.GetString(0)); }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            // the sink's table is made with its first batch
        }

        return keys;
    }

    private static string Schema(PostgresMetadataFixture fixture) => "names_" + fixture.Cluster;

    private static Dictionary<string, string> Env(PostgresMetadataFixture fixture) => new()
    {
        [SharedMetadata.PostgresVariable] = ServerSettings.PostgresConnectionString, [SharedMetadata.NameVariable] = fixture.Cluster,
        [ClusterOptions.NatsVariable] = NatsUrls, [ClusterOptions.ReplicasVariable] = "3", [ClusterOptions.PartitionsVariable] = "4",
    };

    /// <summary>The recipe (the same name in both clusters), its sink a PostgreSQL schema of the cluster's own.</summary>
    private string WriteRecipe(string tag, string schema)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_temp.Sub("recipes-" + tag), _recipe)).FullName;
        Directory.CreateDirectory(Path.Combine(folder, "schemas"));
        File.WriteAllText(Path.Combine(folder, "schemas", "events.v1.yaml"), "version: 1\nfields:\n  key: string\n  ts: timestamp\n");
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"""
            name: {_recipe}
            pipelines:
              events:
                source:
                  type: http
                  stream: events
                  table: events
                  schemas:
                    1: schemas/events.v1.yaml
                  time_field: ts
                sinks:
                  - type: postgres
                    schema: {schema}
                    connection: "{ServerSettings.PostgresConnectionString}"
                    keys:
                      events: [tenant_id, key]
            """);
        return folder;
    }

    private async Task CleanUpAsync(params PostgresMetadataFixture[] clusters)
    {
        NpgsqlConnection.ClearAllPools();
        await using (var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await c.OpenAsync();
            foreach (var fixture in clusters)
            {
                await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{Schema(fixture)}\" CASCADE", c);
                await cmd.ExecuteNonQueryAsync();
            }
        }

        await using var nats = new NatsConnection(Opts);
        var js = nats.CreateJetStreamContext();
        foreach (var fixture in clusters)
        {
            try { await js.DeleteStreamAsync($"SLUICE_{fixture.Cluster}_{_recipe}_events"); }
            catch (NatsJSApiException) { /* never made */ }
        }
    }
}
