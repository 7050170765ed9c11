using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Cluster;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Status;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The state commands with <c>--cluster</c>: they work on the cluster's shared Postgres store from a machine with no
/// data folder, on what other processes wrote there; state the store does not hold yet is refused saying so; and
/// <c>--cluster</c> without <c>SLUICE_CLUSTER_POSTGRES</c> is refused naming it.
/// </summary>
public sealed class ClusterStateCliTests : IDisposable
{
    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-cluster-cli");

    public void Dispose()
    {
        _fixture.Dispose();
        _temp.Dispose();
    }

    private Dictionary<string, string> Env() => new()
    {
        [SharedMetadata.PostgresVariable] = $"postgres://{ServerSettings.PgUser}:{ServerSettings.PgPassword}@{ServerSettings.PgHost}:{ServerSettings.PgPort}/{ServerSettings.PgDatabase}",
        [SharedMetadata.NameVariable] = _fixture.Cluster,
    };

    [Fact]
    public async Task Every_state_command_reads_and_writes_the_shared_store_written_by_other_processes()
    {
        // Another process (a worker elsewhere) wrote a token, a dead letter, a job run and its registry entry.
        var worker = Directory.CreateDirectory(_temp.Sub("worker")).FullName;
        var created = await RunAsync(worker, "tokens", "create", "--tenant", "acme", "--role", "writer", "--name", "ingest-all", "--cluster");
        created.Code.ShouldBe(0, created.Err);
        var store = _fixture.OpenStore("worker");
        new DeadLetterStore(store, TimeProvider.System).Add("http:tenant-analytics/ecommerce", "tenant acme, request r1, event 1", "missing field 'event_id'", "{\"bad\":1}", "k1");
        var run = new JobRunStore(store, TimeProvider.System).StartOnce("vehicle-files/daily-summary", new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero), "schedule");
        var registry = new WorkerRegistry(store, TimeProvider.System, new WorkerInfo("eu-1", "node-a", 4242, 8081, "tenant-analytics", "1.0.0"), NullLoggerFactory.Instance);
        registry.Register();
        registry.SetHolding("partitions", ["0", "1"]);
        registry.Heartbeat(null, [new PipelineLag("tenant-analytics/ecommerce", 1234)]);

        // From another machine: a data folder that does not exist, and is not created.
        var elsewhere = _temp.Sub("elsewhere");
        var tokens = await RunAsync(elsewhere, "tokens", "list", "--cluster");
        tokens.Code.ShouldBe(0, tokens.Err);
        tokens.Out.ShouldContain("ingest-all");

        var letters = await RunAsync(elsewhere, "dlq", "list", "--cluster", "--format", "json");
        letters.Code.ShouldBe(0, letters.Err);
        var listed = JsonDocument.Parse(letters.Out).RootElement.EnumerateArray().ShouldHaveSingleItem();
        listed.GetProperty("reason").GetString().ShouldBe("missing field 'event_id'");
        var id = listed.GetProperty("id").GetInt64();
        var discarded = await RunAsync(elsewhere, "dlq", "discard", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", "test event", "--cluster");
        discarded.Code.ShouldBe(0, discarded.Err);
        new DeadLetterStore(store, TimeProvider.System).Get(id)!.Status.ShouldBe(DeadLetterStore.Discarded, "the discard went to the shared store");

        var history = await RunAsync(elsewhere, "job", "history", "--cluster");
        history.Code.ShouldBe(0, history.Err);
        history.Out.ShouldContain("vehicle-files/daily-summary");
        history.Out.ShouldContain(run!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // The worker keeps beating while the commands read it, as a live one does (each command may take longer to
        // start than the registry's limit for a silent worker on a loaded machine).
        using var beating = new CancellationTokenSource();
        registry.Heartbeat(null, [new PipelineLag("tenant-analytics/ecommerce", 1234)]); // the commands above may have outlasted the limit
        var beats = registry.RunAsync(() => (null, [new PipelineLag("tenant-analytics/ecommerce", 1234)]), beating.Token);
        var status = await RunAsync(elsewhere, "status", "--cluster", "--format", "json");
        status.Code.ShouldBe(0, status.Err);
        var json = JsonDocument.Parse(status.Out).RootElement;
        var w = json.GetProperty("workers").EnumerateArray().Single();
        (w.GetProperty("id").GetString(), w.GetProperty("host").GetString(), w.GetProperty("health").GetString()).ShouldBe(("eu-1", "node-a", "green"));
        w.GetProperty("holds").GetProperty("partitions").EnumerateArray().Select(p => p.GetString()).ShouldBe(["0", "1"]);
        var lag = json.GetProperty("pipelines").EnumerateArray().Single();
        (lag.GetProperty("pipeline").GetString(), lag.GetProperty("backlog").GetProperty("value").GetInt64()).ShouldBe(("tenant-analytics/ecommerce", 1234L));

        var table = await RunAsync(elsewhere, "status", "--cluster");
        table.Code.ShouldBe(0, table.Err);
        table.Out.ShouldContain("eu-1");
        table.Out.ShouldContain("partitions: 0, 1");
        table.Out.ShouldContain("1,234 events in JetStream");
        await beating.CancelAsync();
        await beats;

        Directory.Exists(elsewhere).ShouldBeFalse("--cluster needs no data folder and makes none");
    }

    [Fact]
    public async Task State_the_shared_store_does_not_hold_yet_is_refused_saying_so()
    {
        var elsewhere = _temp.Sub("elsewhere");
        var query = await RunAsync(elsewhere, "query", "SELECT 1", "--cluster");
        // The lake is shared (docs/SCALING.md, "The lake on the shared store"): query takes --cluster like the others.
        query.Code.ShouldBe(0, query.Err);

        // models --cluster on the embedded warehouse writes the shared lake, whose files are in the shared folder only.
        var models = await RunAsync(elsewhere, "models", "run", "sales-warehouse", "--cluster", "--engine", "duckdb");
        models.Code.ShouldBe(1, models.Err);
        models.Err.ShouldContain("models --cluster: sales-warehouse/");
        models.Err.ShouldContain("runs on the embedded (duckdb) warehouse or reads lake tables, which are the cluster's shared lake only in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
    }

    [Fact]
    public async Task Cluster_without_the_postgres_variable_is_refused_naming_it()
    {
        var env = Env();
        env[SharedMetadata.PostgresVariable] = "";
        foreach (var args in new[] { new[] { "tokens", "list" }, ["dlq", "list"], ["job", "history"], ["status"] })
        {
            using var p = SluiceProcess.StartIn(_temp.Path, _temp.Sub("none"), env, [.. args, "--cluster"]);
            (await p.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(1, p.Stderr);
            p.Stderr.ShouldContain("--cluster: SLUICE_CLUSTER_POSTGRES is not set", customMessage: string.Join(' ', args));
        }
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(string data, params string[] args)
    {
        using var p = SluiceProcess.StartIn(_temp.Path, data, Env(), args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Stdout, p.Stderr);
    }
}
