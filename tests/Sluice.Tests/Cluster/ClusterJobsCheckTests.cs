using Sluice.Cluster;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Recipes;

namespace Sluice.Tests.Cluster;

/// <summary>
/// Which jobs cluster mode runs (<see cref="ClusterJobs"/>): a <c>send_reminders</c> job runs when every worker reaches
/// its store and decrypts with one key, and is refused otherwise naming the variable to set; a <c>postgres_backfill</c>
/// job is refused saying why and how to run it instead.
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
    public void A_postgres_backfill_job_is_refused_saying_why_and_how_to_run_it()
    {
        var job = new JobDefinition("shop", "backfill", "postgres_backfill", null, new FeedingJob());
        ClusterJobs.Runs(job).ShouldBeFalse();
        var refusal = ClusterJobs.Refusal(job);
        refusal.ShouldContain("job 'backfill' (postgres_backfill) does not run in cluster mode: its pages go straight to the pipeline's sinks, outside the cluster's log");
        refusal.ShouldEndWith("run it from one process without --cluster (sluice backfill shop/backfill)");
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

    private sealed class FeedingJob : IJobFactory, IRowFeedingJob
    {
        public string Pipeline => "cdc";

        public IReadOnlyList<string> Sinks => [];

        public IJob Create(IEngineServices services) => throw new NotSupportedException();
    }
}
