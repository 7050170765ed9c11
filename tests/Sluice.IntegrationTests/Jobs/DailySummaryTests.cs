using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;
using static Sluice.IntegrationTests.Support.VehicleFiles;

namespace Sluice.IntegrationTests.Jobs;

public sealed class DailySummaryTests
{
    private static readonly DateTimeOffset AsOf = new(2025, 11, 10, 1, 0, 0, TimeSpan.Zero);

    private static async Task<JobOutcome> RunJobAsync(DropFixture f, DateTimeOffset asOf, DateOnly? from = null, DateOnly? to = null)
    {
        var job = Engine.LoadRecipe("vehicle-files").Job("daily-summary")!;
        return await new JobRunner(f.Engine.Services).RunAsync(job, new JobRequest(asOf, from, to), CancellationToken.None);
    }

    private static List<string> Summary(DropFixture f) =>
        f.Engine.Services.Query.Query("SELECT vehicle_id, day, last_event_time, last_event_type FROM reports.daily_summary ORDER BY day, vehicle_id")
            .Rows.Select(r => string.Join('|', r.Select(v => Sluice.Lake.LakeQueryEngine.FormatValue(v)))).ToList();

    private static Dictionary<string, List<long>> SummaryFiles(DropFixture f) =>
        f.Engine.Services.Lake.FileEntries("reports.daily_summary").GroupBy(e => e.Partition).ToDictionary(g => g.Key, g => g.Select(e => e.Id).ToList());

    [Fact]
    public async Task First_run_summarises_every_day_with_the_last_event_of_each_vehicle()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(
            ("V1", "2025-10-01T08:00:00Z", "ignition_on"), ("V1", "2025-10-01T18:00:00Z", "ignition_off"),
            ("V2", "2025-10-01T09:00:00Z", "idle"), ("V1", "2025-11-09T07:00:00Z", "braking")));
        await f.RunOnceAsync();

        var outcome = await RunJobAsync(f, AsOf);

        Summary(f).ShouldBe([
            "V1|2025-10-01|2025-10-01 18:00:00|ignition_off",
            "V2|2025-10-01|2025-10-01 09:00:00|idle",
            "V1|2025-11-09|2025-11-09 07:00:00|braking",
        ]);
        outcome.RowsIn.ShouldBe(4);
        outcome.RowsOut.ShouldBe(3);
    }

    [Fact]
    public async Task A_late_event_days_later_updates_its_day_without_rewriting_other_days_and_a_rerun_changes_nothing()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", "2025-11-01T10:00:00Z", "idle"), ("V1", "2025-11-09T10:00:00Z", "idle")));
        await f.RunOnceAsync();
        await RunJobAsync(f, AsOf);
        var before = SummaryFiles(f);

        // Nine days late: far outside the 2-day look-back, but its partition received rows since the last run.
        f.Drop_("vehicles_events_2.json", Events(("V1", "2025-11-01T23:00:00Z", "ignition_off")));
        await f.RunOnceAsync();
        var outcome = await RunJobAsync(f, AsOf);

        Summary(f).ShouldContain("V1|2025-11-01|2025-11-01 23:00:00|ignition_off");
        outcome.Message.ShouldStartWith("recomputed 1 day (2025-11-01..2025-11-01)");
        var after = SummaryFiles(f);
        after["2025-11-09"].ShouldBe(before["2025-11-09"], "an unaffected day keeps its files");
        after["2025-11-01"].ShouldNotBe(before["2025-11-01"]);

        var maxId = f.Engine.Services.Lake.MaxManifestId();
        var rerun = await RunJobAsync(f, AsOf);
        rerun.Message.ShouldStartWith("nothing changed");
        f.Engine.Services.Lake.MaxManifestId().ShouldBe(maxId, "a rerun with no new data writes nothing");
    }

    [Fact]
    public async Task Backfill_recomputes_its_range_and_gives_the_same_result()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", "2025-11-01T10:00:00Z", "idle"), ("V2", "2025-11-03T10:00:00Z", "braking"), ("V3", "2025-11-05T10:00:00Z", "idle")));
        await f.RunOnceAsync();
        await RunJobAsync(f, AsOf);
        var summary = Summary(f);
        var before = SummaryFiles(f);
        var progress = new List<Core.Recipes.JobProgress>();

        var job = Engine.LoadRecipe("vehicle-files").Job("daily-summary")!;
        var outcome = await new JobRunner(f.Engine.Services).RunAsync(job,
            new JobRequest(AsOf, new DateOnly(2025, 11, 1), new DateOnly(2025, 11, 3), new SyncProgress(progress.Add), "backfill"), CancellationToken.None);

        Summary(f).ShouldBe(summary);
        outcome.Message.ShouldStartWith("recomputed 3 days (2025-11-01..2025-11-03)");
        progress.Last().Done.ShouldBe(3);
        SummaryFiles(f)["2025-11-05"].ShouldBe(before["2025-11-05"], "outside the range");
        SummaryFiles(f)["2025-11-01"].ShouldNotBe(before["2025-11-01"]);
        new JobRunStore(f.Engine.Services.Metadata, f.Engine.Services.Time).History("vehicle-files/daily-summary").First().Trigger.ShouldBe("backfill");
    }

    [Fact]
    public async Task Look_back_days_without_data_are_empty_and_the_job_reports_no_source_yet()
    {
        await using var f = new DropFixture();

        var outcome = await RunJobAsync(f, AsOf);

        outcome.Message.ShouldBe("nothing to summarise: raw_data.vehicle_events has no data yet");
    }

    [Fact]
    public async Task A_run_whose_lease_was_taken_over_commits_nothing_and_the_next_run_does_the_work()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", "2025-11-01T10:00:00Z", "idle"), ("V2", "2025-11-09T10:00:00Z", "braking")));
        await f.RunOnceAsync();
        var job = Engine.LoadRecipe("vehicle-files").Job("daily-summary")!;
        var lease = new JobLease(job.FullName, 1, 1, AsOf);

        // On a cluster the fence checks the run's lease (JobLeases.Fence); here it says another run took the job over.
        using (JobFence.Enter(() => throw new JobLeaseLostException(lease)))
        {
            await Should.ThrowAsync<JobLeaseLostException>(() => job.Factory.Create(f.Engine.Services).RunAsync(new JobRequest(AsOf), CancellationToken.None));
        }

        f.Engine.Services.Lake.FileEntries("reports.daily_summary").ShouldBeEmpty("the fenced commit wrote no summary file");
        new Core.Metadata.CheckpointStore(f.Engine.Services.Metadata, f.Engine.Services.Time).Get("job:vehicle-files/reports.daily_summary:manifest")
            .ShouldBeNull("nor its watermark: the next run starts from scratch");

        var outcome = await RunJobAsync(f, AsOf);
        outcome.Message.ShouldStartWith("recomputed 2 days");
        Summary(f).ShouldBe(["V1|2025-11-01|2025-11-01 10:00:00|idle", "V2|2025-11-09|2025-11-09 10:00:00|braking"]);
    }

    private sealed class SyncProgress(Action<Core.Recipes.JobProgress> report) : IProgress<Core.Recipes.JobProgress>
    {
        public void Report(Core.Recipes.JobProgress value) => report(value);
    }
}
