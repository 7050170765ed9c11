using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;

namespace Sluice.IntegrationTests.Cluster;

/// <summary><c>sluice run --cluster</c> refuses, before it starts anything, what cluster mode cannot run yet, saying what and why.</summary>
public sealed class ClusterModeCliTests
{
    [Fact]
    public async Task A_lake_sink_without_the_shared_folder_is_refused_in_cluster_mode()
    {
        // Each worker would write files the others cannot read, named in the one manifest they share.
        using var temp = new TempFolder();
        var cluster = "m" + Guid.NewGuid().ToString("N")[..10];
        try
        {
            var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string>
            {
                ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString,
                ["SLUICE_CLUSTER_NAME"] = cluster, ["SLUICE_CLUSTER_FOLDER"] = "",
            }, "run", "tenant-analytics", "--cluster");
            code.ShouldBe(1, err);
            err.ShouldContain("so its Parquet files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
        }
        finally
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            await using var c = new Npgsql.NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await c.OpenAsync();
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", c);
            await drop.ExecuteNonQueryAsync();
        }
    }

    [Fact]
    public async Task A_job_that_uses_the_lake_is_refused_in_cluster_mode_naming_it()
    {
        using var temp = new TempFolder();
        var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string> { ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1" }, "run", "vehicle-files", "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("--cluster: vehicle-files: job 'daily-summary' (daily_summary) does not run in cluster mode yet: it reads or writes the data folder's lake");
    }

    [Fact]
    public async Task Cluster_mode_without_nats_servers_names_the_variable()
    {
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "tenant-analytics",
            ("      - type: lake                     # the embedded warehouse: analytics.events, analytics.event_items\n        zone: analytics\n        partition_by: event_ts\n",
             "      - type: postgres\n        schema: cluster_cli\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]\n"));
        var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string> { ["SLUICE_CLUSTER_NATS"] = "" }, "run", recipe, "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("cluster: SLUICE_CLUSTER_NATS is not set");
    }

    [Theory]
    [InlineData("holder", "        partition_by: event_ts\n", "the lake sink runs in a postgres_cdc pipeline in cluster mode only through JetStream (SLUICE_CLUSTER_CDC=jetstream, the default), not with SLUICE_CLUSTER_CDC=holder")]
    [InlineData("", "        mode: mirror\n", "the lake sink's mode: mirror does not run in cluster mode yet")]
    public async Task A_lake_sink_in_a_cdc_pipeline_is_refused_with_the_holder_running_it_or_as_a_mirror(string cdc, string lake, string refusal)
    {
        // Through JetStream (the default) a lake sink in mode: changes runs (ClusterCdcJetStreamTests); these two do not yet.
        using var temp = new TempFolder();
        var recipe = RecipeVariant.Create(temp, "engagement-cdc", ("    sinks:\n", "    sinks:\n      - type: lake\n        zone: cdc\n" + lake),
            // The backfill job (it refuses a mirror's lake sink itself) is left out: jobs do not run in cluster mode.
            ("jobs:\n  backfill:\n    type: postgres_backfill\n    connection: { database: \"${PGDATABASE:-sluice}\" }\n    pipeline: cdc                     # the same enrichment and the same idempotent sinks\n" +
             "    table: engagement_events\n    time: event_ts\n    key: event_id\n    batch_rows: 10000\n", ""));
        var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString, ["SLUICE_CLUSTER_CDC"] = cdc,
        }, "run", recipe, "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain($"--cluster: engagement-cdc: pipeline 'cdc': {refusal}");
    }

    [Fact]
    public async Task Run_once_does_not_take_cluster()
    {
        using var temp = new TempFolder();
        var (code, _, err) = await RunAsync(temp.Path, null, "run", "tenant-analytics", "--once", "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("run --once does not take --cluster");
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(string data, IDictionary<string, string>? env, params string[] args)
    {
        using var p = SluiceProcess.Start(data, env, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Stdout, p.Stderr);
    }
}
