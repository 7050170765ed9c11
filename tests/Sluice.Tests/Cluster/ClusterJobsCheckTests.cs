using Sluice.Cluster;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Recipes;

namespace Sluice.Tests.Cluster;

/// <summary>
/// Which jobs cluster mode runs (<see cref="ClusterJobs"/>): a <c>send_reminders</c> job runs when every worker reaches
/// its store and decrypts with one key, and is refused otherwise naming the variable to set; a <c>postgres_backfill</c>
/// job runs into a postgres_cdc pipeline through JetStream, with every sink and a lease JetStream's deduplication
/// outlasts, and is refused otherwise saying why.
/// </summary>
public sealed class ClusterJobsCheckTests : IDisposable
{
    private static readonly string Key = Convert.ToBase64String(new byte[32]);

    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sluice-cluster-jobs-" + Guid.NewGuid().ToString("N"))).FullName;

    [Fact]
    public void Send_reminders_on_the_lake_zone_runs_with_the_shared_folder_and_one_key()
    {
        var job = SendReminders("lake: {zone: reminders}");
        ClusterJobs.Runs(job).ShouldBeTrue();
        ClusterJobs.Problem(job, Variables(("SLUICE_CLUSTER_FOLDER", "/shared"), ("SLUICE_REMINDER_KEY", Key))).ShouldBeNull();

        ClusterJobs.Problem(job, Variables(("SLUICE_REMINDER_KEY", Key)))
            .ShouldBe("job 'send' (send_reminders) does not run in cluster mode as configured: it reads the lake zone 'reminders', whose files must be in a folder every worker sees: set SLUICE_CLUSTER_FOLDER (or give its store a postgres: schema)");
        ClusterJobs.Problem(job, Variables(("SLUICE_CLUSTER_FOLDER", "/shared")))
            .ShouldBe("job 'send' (send_reminders) does not run in cluster mode as configured: each worker would decrypt addresses with a key of its own data folder (keys/rr.key); set SLUICE_REMINDER_KEY to the same key for every worker");
    }

    [Fact]
    public void Send_reminders_on_postgres_needs_no_shared_folder_but_one_key()
    {
        var job = SendReminders("postgres: {schema: rr}\nprivacy: {key_env: RR_KEY}");
        ClusterJobs.Problem(job, Variables(("RR_KEY", Key))).ShouldBeNull("the reminder tables are on the server every worker reaches");
        ClusterJobs.Problem(job, Variables(("SLUICE_REMINDER_KEY", Key))).ShouldNotBeNull().ShouldContain("set RR_KEY to the same key for every worker");
    }

    [Fact]
    public void A_postgres_backfill_into_a_cdc_pipeline_runs_and_is_refused_as_configured_saying_why()
    {
        var (recipe, job) = Backfill("");
        ClusterJobs.Runs(job).ShouldBeTrue();
        ClusterJobs.FeedProblem(recipe, job).ShouldBeNull();
        ClusterJobs.Problem(job, Variables()).ShouldBeNull();
        ClusterJobs.Problem(job, Variables(("SLUICE_CLUSTER_JOB_LEASE", "300"))).ShouldBeNull();

        ClusterJobs.Problem(job, Variables(("SLUICE_CLUSTER_CDC", "holder")))
            .ShouldBe("job 'backfill' (postgres_backfill) does not run in cluster mode as configured: its pages go through pipeline 'cdc''s change stream in JetStream, which SLUICE_CLUSTER_CDC=holder does not use; run it with SLUICE_CLUSTER_CDC=jetstream (the default) or from one process without --cluster");
        ClusterJobs.Problem(job, Variables(("SLUICE_CLUSTER_JOB_LEASE", "301"))).ShouldNotBeNull()
            .ShouldContain("SLUICE_CLUSTER_JOB_LEASE is 301 s: a page its runner published before it died is published again by the run that takes over, after the lease, and JetStream recognises it only within 10 minutes; set at most 300 s");

        var (_, some) = Backfill("    sinks: [first]\n");
        ClusterJobs.Problem(some, Variables())
            .ShouldBe("job 'backfill' (postgres_backfill) does not run in cluster mode as configured: its pages go through the cluster's log to every sink of pipeline 'cdc', so it cannot take only some of them (sinks: first); remove sinks: or run it from one process without --cluster");
    }

    [Fact]
    public void A_postgres_backfill_into_a_pipeline_without_a_change_stream_is_refused_naming_its_source()
    {
        var (recipe, job) = Backfill("");
        var http = new Recipe { Name = recipe.Name, Folder = recipe.Folder, Pipelines = [new PipelineDefinition("cdc", "http", new NoSource(), [])], Jobs = recipe.Jobs };
        ClusterJobs.FeedProblem(http, job)
            .ShouldBe("job 'backfill' (postgres_backfill) does not run in cluster mode as configured: its pages go through the cluster's log as changes of pipeline 'cdc''s postgres_cdc stream, and that pipeline's source is 'http'; run it from one process without --cluster");
    }

    [Fact]
    public void A_job_whose_state_is_the_data_folder_s_is_refused_naming_the_jobs_that_run()
    {
        var job = new JobDefinition("shop", "local", "local_job", null, new LocalJob());
        ClusterJobs.Runs(job).ShouldBeFalse();
        ClusterJobs.Refusal(job).ShouldEndWith("(daily_summary, models, send_reminders and postgres_backfill run in cluster mode)");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private JobDefinition SendReminders(string store)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root, "rr")).FullName;
        File.WriteAllText(Path.Combine(folder, "store.yaml"), store + "\n");
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), """
            name: rr
            jobs:
              send:
                type: send_reminders
                schedule: "* * * * *"
                store: store.yaml
                smtp: {host: 127.0.0.1, port: 25, from: reminders@example.test}
            """);
        var (recipe, errors) = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder);
        errors.All.ShouldBeEmpty();
        return recipe!.Jobs.Single();
    }

    private static Func<string, string?> Variables(params (string Name, string Value)[] set) =>
        name => set.FirstOrDefault(v => v.Name == name).Value;

    /// <summary>A recipe with a postgres_cdc pipeline of two sinks and a postgres_backfill job into it, with <paramref name="more"/> in the job.</summary>
    private (Recipe Recipe, JobDefinition Job) Backfill(string more)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root, "shop" + Guid.NewGuid().ToString("N")[..6])).FullName;
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), """
            name: shop
            pipelines:
              cdc:
                source:
                  type: postgres_cdc
                  tables:
                    orders: { on_update: emit, on_delete: emit }
                sinks:
                  - type: redis
                    name: first
                    table: orders
                    key: "o:{id}"
                  - type: redis
                    name: second
                    table: orders
                    key: "p:{id}"
            jobs:
              backfill:
                type: postgres_backfill
                pipeline: cdc
                table: orders
                time: ordered_at
                key: id

            """ + more);
        var (recipe, errors) = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder);
        errors.All.ShouldBeEmpty();
        return (recipe!, recipe!.Jobs.Single());
    }

    private sealed class LocalJob : IJobFactory
    {
        public IJob Create(IEngineServices services) => throw new NotSupportedException();
    }

    private sealed class NoSource : ISourceFactory
    {
        public IRunnableSource Create(IEngineServices services) => throw new NotSupportedException();
    }
}
