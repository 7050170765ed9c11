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
    public async Task A_job_on_the_shared_lake_without_the_shared_folder_is_refused_naming_the_job_and_the_variable()
    {
        using var temp = new TempFolder();
        var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string> { ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_FOLDER"] = "" }, "run", "vehicle-files", "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("--cluster: vehicle-files: job 'daily-summary' (daily_summary) in cluster mode reads and writes the shared lake, whose files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
    }

    [Fact]
    public async Task A_models_job_on_the_embedded_warehouse_without_the_shared_folder_is_refused_naming_the_variable()
    {
        // Its tables are in the shared lake and its state in the shared store (ClusterModelsLakeTests): the lake's files need the shared folder.
        using var temp = new TempFolder();
        var (code, _, err) = await RunAsync(temp.Path, new Dictionary<string, string> { ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_FOLDER"] = "" }, "run", "sales-warehouse", "--cluster");
        code.ShouldBe(1, err);
        err.ShouldContain("--cluster: sales-warehouse: job 'daily' (models) in cluster mode reads and writes the shared lake, whose files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_mapped_pull_and_the_send_reminders_job_on_the_lake_zone_are_refused_without_the_shared_folder_or_one_key_naming_what_to_set(bool sharedFolder)
    {
        // repeat-reminder's commented pull of Mongo-shaped rows, on: its store is the lake zone, which in a cluster is the
        // shared lake (its files in SLUICE_CLUSTER_FOLDER; ClusterMappedPullLakeTests runs the pull on workers,
        // ClusterRemindersTests the send_reminders job). Without the folder both are refused naming it; with the folder
        // but no SLUICE_REMINDER_KEY both are refused naming the key, and nothing else.
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
                ["SLUICE_CLUSTER_FOLDER"] = sharedFolder ? temp.Sub("shared") : "", ["SLUICE_REMINDER_KEY"] = sharedFolder ? "" : Convert.ToBase64String(new byte[32]),
            }, "run", recipe, "--cluster");
            code.ShouldBe(1, err);
            if (sharedFolder)
            {
                err.ShouldContain("pipeline 'mongo-table': a postgres_pull pull with mapping: does not run in cluster mode as configured: each worker would protect fields with a key of its own data folder");
                err.ShouldContain("job 'send-reminders' (send_reminders) does not run in cluster mode as configured: each worker would decrypt addresses with a key of its own data folder (keys/repeat-reminder.key); set SLUICE_REMINDER_KEY to the same key for every worker");
                err.ShouldNotContain("SLUICE_CLUSTER_FOLDER");
            }
            else
            {
                err.ShouldContain("pipeline 'mongo-table': a postgres_pull pull with mapping: does not run in cluster mode as configured: it lands attorney events in the lake zone 'reminders', whose files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
                err.ShouldContain("job 'send-reminders' (send_reminders) does not run in cluster mode as configured: it reads the lake zone 'reminders', whose files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER");
            }
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

    [Theory]
    [InlineData("run")]
    [InlineData("validate")]
    public async Task A_lake_change_log_in_a_cdc_pipeline_is_refused_with_the_holder_and_a_lake_mirror_is_not(string command)
    {
        // Through JetStream (the default) a lake sink runs in either mode (ClusterCdcJetStreamTests, ClusterLakeMirrorTests);
        // with the holder only as a mirror (ClusterHolderLakeMirrorTests).
        using var temp = new TempFolder();
        using var mirrored = new TempFolder();
        string Recipe(TempFolder folder, string lake) => RecipeVariant.Create(folder, "engagement-cdc", ("    sinks:\n", "    sinks:\n      - type: lake\n        zone: cdc\n" + lake),
            // The backfill job is left out: it refuses a mirror's lake sink itself, and in holder mode it is refused too.
            ("jobs:\n  backfill:\n    type: postgres_backfill\n    connection: { database: \"${PGDATABASE:-sluice}\" }\n    pipeline: cdc                     # the same enrichment and the same idempotent sinks\n" +
             "    table: engagement_events\n    time: event_ts\n    key: event_id\n    batch_rows: 10000\n", ""));
        var env = new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_NATS"] = "nats://127.0.0.1:1", ["SLUICE_CLUSTER_POSTGRES"] = ServerSettings.PostgresConnectionString, ["SLUICE_CLUSTER_CDC"] = "holder",
        };
        var (code, stdout, err) = await RunAsync(temp.Path, env, command, Recipe(temp, "        partition_by: event_ts\n"), "--cluster");
        code.ShouldBe(1, err);
        (stdout + err).ShouldContain("--cluster: engagement-cdc: pipeline 'cdc': the lake sink runs in a postgres_cdc pipeline in cluster mode with SLUICE_CLUSTER_CDC=holder only as a mirror (mode: mirror), " +
            "or as a change log through JetStream (SLUICE_CLUSTER_CDC=jetstream, the default): a holder's batches carry no stream sequence, and a holder that lost the slot alive may still commit a batch the next holder wrote too, which a change log would hold twice");
        if (command == "validate")
        {
            // The same recipe with a mirror passes cluster mode's check (running it is ClusterHolderLakeMirrorTests').
            var (mirrorCode, mirrorOut, mirrorErr) = await RunAsync(temp.Path, env, "validate", Recipe(mirrored, "        mode: mirror\n"), "--cluster");
            mirrorCode.ShouldBe(0, mirrorOut + mirrorErr);
            mirrorErr.ShouldContain("engagement-cdc: valid");
        }
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
