using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Hosting;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// Jobs on a cluster (issue 18): three workers' schedulers on one shared Postgres store and one fake clock fire each slot
/// once; the runner of a slot cut off from the store mid-run (its connections dropped, as by a dead process or a network
/// cut) loses its lease, its run shows as interrupted, and one other worker re-runs the slot, once.
/// </summary>
public sealed class ClusterJobsTests : IDisposable
{
    private readonly PostgresMetadataFixture _fixture = new();
    private readonly List<TempFolder> _folders = [];

    public void Dispose()
    {
        _fixture.Dispose();
        foreach (var f in _folders) { f.Dispose(); }
    }

    [Fact]
    public async Task Three_schedulers_fire_each_slot_once_and_a_cut_off_runners_slot_is_rerun_once_by_another_worker()
    {
        var time = _fixture.Time;
        var start = time.GetUtcNow();
        var blockedSlot = start.AddMinutes(2);
        var calls = new ConcurrentQueue<(int Worker, DateTimeOffset AsOf, string Trigger)>();
        var blocked = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = new List<(EngineServices Services, TcpForwarder Link)>();
        var job = new JobDefinition("shop", "models", "test", "* * * * *", new RecordingJob(services => workers.FindIndex(w => w.Services == services), calls, blockedSlot, blocked));
        using var stop = new CancellationTokenSource();
        var running = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            // Each worker reaches Postgres through a link of its own, which the test can cut.
            var port = FreePort.Next();
            var link = new TcpForwarder(port, ServerSettings.PgHost, ServerSettings.PgPort);
            var settings = new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { Host = "127.0.0.1", Port = port, ApplicationName = $"sluice-jobs-{i}", Timeout = 3 };
            var folder = new TempFolder("cluster-jobs");
            _folders.Add(folder);
            var services = new EngineServices(new DataDirectory(folder.Path), time, NullLoggerFactory.Instance, shared: SharedMetadata.Parse(settings.ConnectionString, _fixture.Cluster));
            workers.Add((services, link));
            var runner = new JobRunner(services);
            var scheduler = new CronScheduler([job], (j, asOf, ct) => runner.RunSlotAsync(j, asOf, lease => runner.RunAsync(j, new JobRequest(asOf, Trigger: "schedule"), ct, claimed: lease)), time, NullLogger.Instance);
            var takeover = new JobTakeover(runner, [job], (j, lease, ct) => runner.RunAsync(j, new JobRequest(lease.AsOf, Trigger: "rerun"), ct, claimed: lease), time, NullLogger.Instance);
            running.Add(scheduler.RunAsync(stop.Token));
            running.Add(takeover.RunAsync(stop.Token));
        }

        await AdvanceAsync(time, TimeSpan.FromMinutes(2));
        var runnerOfBlocked = await blocked.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // The runner of the 12:02 slot is cut off from the store mid-run: it can no longer renew its lease.
        await workers[runnerOfBlocked].Link.DisposeAsync();
        await AdvanceAsync(time, TimeSpan.FromMinutes(3));
        await Wait.UntilAsync(() => calls.Count(c => c.Trigger == "rerun") == 1);

        await stop.CancelAsync();
        await Task.WhenAll(running);
        for (var i = 0; i < workers.Count; i++)
        {
            if (i != runnerOfBlocked) { await workers[i].Link.DisposeAsync(); }
            workers[i].Services.Dispose();
        }

        var slots = Enumerable.Range(1, 5).Select(m => start.AddMinutes(m)).ToList();
        calls.Where(c => c.Trigger == "schedule").Select(c => c.AsOf).Order().ToList().ShouldBe(slots, "each slot fired once across the three workers");
        var rerun = calls.Single(c => c.Trigger == "rerun");
        rerun.AsOf.ShouldBe(blockedSlot);
        rerun.Worker.ShouldNotBe(runnerOfBlocked, "the cut-off worker cannot reach the store; another took the slot over");
        calls.Select(c => c.Worker).Distinct().Count().ShouldBeGreaterThan(1, "slots are taken by whichever worker claims them first");

        var history = new JobRunStore(_fixture.Store, time).Runs("shop/models", 20);
        history.Where(r => r.AsOf == blockedSlot).Select(r => (r.Trigger, r.Status)).ShouldBe(new[] { ("rerun", JobRunStore.Succeeded), ("schedule", JobRunStore.Interrupted) });
        history.Where(r => r.AsOf != blockedSlot).ShouldAllBe(r => r.Status == JobRunStore.Succeeded && r.Trigger == "schedule");
        history.Count.ShouldBe(6);
    }

    /// <summary>Moves the shared clock a second at a time, letting schedulers, renewals and take-overs run between steps.</summary>
    private static async Task AdvanceAsync(Microsoft.Extensions.Time.Testing.FakeTimeProvider time, TimeSpan by)
    {
        for (var moved = TimeSpan.Zero; moved < by; moved += TimeSpan.FromSeconds(1))
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(50);
        }
    }

    /// <summary>A job that records which worker ran which slot; the first run of <paramref name="blockedSlot"/> hangs until cancelled.</summary>
    private sealed class RecordingJob(Func<IEngineServices, int> worker, ConcurrentQueue<(int, DateTimeOffset, string)> calls, DateTimeOffset blockedSlot, TaskCompletionSource<int> blocked) : IJobFactory
    {
        public IJob Create(IEngineServices services) => new Run(worker(services), calls, blockedSlot, blocked);

        private sealed class Run(int worker, ConcurrentQueue<(int, DateTimeOffset, string)> calls, DateTimeOffset blockedSlot, TaskCompletionSource<int> blocked) : IJob
        {
            public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
            {
                calls.Enqueue((worker, request.AsOf, request.Trigger));
                if (request.AsOf == blockedSlot && request.Trigger == "schedule" && blocked.TrySetResult(worker))
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }

                return new JobOutcome(1, 1, "ran");
            }
        }
    }
}
