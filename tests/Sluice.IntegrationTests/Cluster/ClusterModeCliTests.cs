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
            await DropClusterSchemaAsync(cluster);
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
    public async Task A_mapped_pull_landing_in_the_lake_is_refused_in_cluster_mode_naming_the_zone()
    {
        // repeat-reminder's commented pull of Mongo-shaped rows, on: its store is the lake zone of each worker's data folder.
        using var temp = new TempFolder();
        var cluster = "m" + Guid.NewGuid().ToString("N")[..10];
        var recipe = RecipeVariant.Create(temp, "repeat-reminder",
            ("  # mongo-table:\n  #   source:\n  #     type: postgres_pull\n  #     table: public.mongo_events\n  #     key_column: _id\n  #     updated_column: updated_at\n  #     mapping: mappings/mongo.yaml\n",
             "  mongo-table:\n    source:\n      type: postgres_pull\n      table: public.mongo_events\n      key_column: _id\n      updated_column: updated_at\n      mapping: mappings/mongo.yaml\n"));
        try
        {
            var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string>
            {
                ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString, ["SLUICE_CLUSTER_NAME"] = cluster,
            }, "run", recipe, "--cluster");
            code.ShouldBe(1, err);
            err.ShouldContain("pipeline 'mongo-table': a postgres_pull pull with mapping: does not run in cluster mode as configured: it lands attorney events in the lake zone 'reminders' of the data folder, which is each worker's own");
        }
        finally
        {
            await DropClusterSchemaAsync(cluster);
        }
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

    [Fact]
    public async Task Run_once_does_not_take_cluster()
    {
        using var temp = new TempFolder();
        var (code, _, err) = await RunAsync(temp.Path, null, "run", "tenant-analytics", "--once", "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("run --once does not take --cluster");
    }

    /// <summary>The cluster's schema, which <c>run --cluster</c> made before it refused the recipe.</summary>
    private static async Task DropClusterSchemaAsync(string cluster)
    {
        Npgsql.NpgsqlConnection.ClearAllPools();
        await using var c = new Npgsql.NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", c);
        await drop.ExecuteNonQueryAsync();
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(string data, IDictionary<string, string>? env, params string[] args)
    {
        using var p = SluiceProcess.Start(data, env, args);
        var code = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Stdout, p.Stderr);
    }
}
