using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Recipes;
using Sluice.Jobs;

namespace Sluice.Tests.Jobs;

public sealed class CronSchedulerTests
{
    [Fact]
    public async Task Fires_at_the_cron_time_in_utc_as_of_the_scheduled_instant()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 23, 59, 0, TimeSpan.Zero));
        var fired = new List<DateTimeOffset>();
        var job = new JobDefinition("r", "daily", "daily_summary", "0 1 * * *", null!);
        using var cts = new CancellationTokenSource();
        var scheduler = new CronScheduler([job], (_, asOf, _) => { lock (fired) { fired.Add(asOf); } return Task.CompletedTask; }, time, NullLogger.Instance);
        var running = scheduler.RunAsync(cts.Token);

        await AdvanceAsync(time, TimeSpan.FromMinutes(60));
        lock (fired) { fired.ShouldBeEmpty("00:59 is before 01:00"); }
        await AdvanceAsync(time, TimeSpan.FromMinutes(1));
        await WaitForAsync(() => { lock (fired) { return fired.Count == 1; } });
        await AdvanceAsync(time, TimeSpan.FromDays(1));
        await WaitForAsync(() => { lock (fired) { return fired.Count == 2; } });

        await cts.CancelAsync();
        await running;
        fired.ShouldBe([new DateTimeOffset(2025, 11, 9, 1, 0, 0, TimeSpan.Zero), new DateTimeOffset(2025, 11, 10, 1, 0, 0, TimeSpan.Zero)]);
    }

    [Fact]
    public async Task Next_run_is_the_time_the_running_scheduler_fires_the_job_next()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 23, 59, 0, TimeSpan.Zero));
        var fired = 0;
        var daily = new JobDefinition("r", "daily", "daily_summary", "0 1 * * *", null!);
        var unscheduled = new JobDefinition("r", "by-hand", "daily_summary", null, null!);
        using var cts = new CancellationTokenSource();
        var scheduler = new CronScheduler([daily, unscheduled], (_, _, _) => { Interlocked.Increment(ref fired); return Task.CompletedTask; }, time, NullLogger.Instance);
        scheduler.NextRunAt("r/daily").ShouldBeNull("not started: nothing is scheduled yet");
        var running = scheduler.RunAsync(cts.Token);

        scheduler.NextRunAt("r/daily").ShouldBe(new DateTimeOffset(2025, 11, 9, 1, 0, 0, TimeSpan.Zero));
        scheduler.NextRunAt("r/by-hand").ShouldBeNull();
        await AdvanceAsync(time, TimeSpan.FromMinutes(61));
        await WaitForAsync(() => Volatile.Read(ref fired) == 1);
        scheduler.NextRunAt("r/daily").ShouldBe(new DateTimeOffset(2025, 11, 10, 1, 0, 0, TimeSpan.Zero));

        await cts.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_run_still_going_at_its_next_time_is_not_started_twice()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 11, 8, 0, 0, 30, TimeSpan.Zero));
        var started = 0;
        var release = new TaskCompletionSource();
        var job = new JobDefinition("r", "every-minute", "x", "* * * * *", null!);
        using var cts = new CancellationTokenSource();
        var scheduler = new CronScheduler([job], async (_, _, _) => { Interlocked.Increment(ref started); await release.Task; }, time, NullLogger.Instance);
        var running = scheduler.RunAsync(cts.Token);

        await AdvanceAsync(time, TimeSpan.FromSeconds(30));
        await WaitForAsync(() => Volatile.Read(ref started) == 1);
        await AdvanceAsync(time, TimeSpan.FromMinutes(1));
        await AdvanceAsync(time, TimeSpan.FromMinutes(1));
        Volatile.Read(ref started).ShouldBe(1);

        release.SetResult();
        await AdvanceAsync(time, TimeSpan.FromMinutes(1));
        await WaitForAsync(() => Volatile.Read(ref started) == 2);
        await cts.CancelAsync();
        await running;
    }

    /// <summary>Moves the fake clock in small steps, letting the scheduler's continuations run between them.</summary>
    private static async Task AdvanceAsync(FakeTimeProvider time, TimeSpan by)
    {
        var step = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(10).Ticks, by.Ticks / 50));
        for (var moved = TimeSpan.Zero; moved < by; moved += step)
        {
            time.Advance(by - moved < step ? by - moved : step);
            await Task.Yield();
            await Task.Delay(1);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        // 60 s at most: the scheduler's work runs on the thread pool, which a loaded CI machine may starve for seconds.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition() && DateTime.UtcNow < deadline) { await Task.Delay(10); }
        condition().ShouldBeTrue();
    }
}
