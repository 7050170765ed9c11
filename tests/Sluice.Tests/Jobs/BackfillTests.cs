using Sluice.Jobs;

namespace Sluice.Tests.Jobs;

/// <summary>A backfill runs its days in order, shows its progress as it goes, counts failed days and goes on, and stops on a cancel naming the days that finished.</summary>
public sealed class BackfillTests
{
    private static readonly DateOnly May1 = new(2024, 5, 1);
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Runs_every_day_in_order_with_progress_while_it_goes()
    {
        var backfill = new Backfill("b", "r", "j", May1, May1.AddDays(2));
        var ran = new List<DateOnly>();
        var second = new TaskCompletionSource();
        var reached = new TaskCompletionSource();
        var run = backfill.RunAsync(async (day, _) =>
        {
            ran.Add(day);
            if (day == May1.AddDays(1)) { reached.SetResult(); await second.Task; }
        }, CancellationToken.None);

        await reached.Task.WaitAsync(Prompt);
        backfill.View().ShouldBe(new BackfillView("b", "r", "j", "2024-05-01", "2024-05-03", 3, 1, 0, Backfill.Running, "1 of 3 day(s) done"));
        backfill.Finished.ShouldBeFalse();
        second.SetResult();
        await run.WaitAsync(Prompt);

        ran.ShouldBe([May1, May1.AddDays(1), May1.AddDays(2)]);
        backfill.View().ShouldBe(new BackfillView("b", "r", "j", "2024-05-01", "2024-05-03", 3, 3, 0, Backfill.Succeeded, "3 day(s) recomputed: 2024-05-01..2024-05-03"));
        backfill.Ended.IsCompleted.ShouldBeTrue();
    }

    [Fact]
    public async Task A_failed_day_is_counted_with_its_reason_and_the_next_days_still_run()
    {
        var backfill = new Backfill("b", "r", "j", May1, May1.AddDays(3));
        await backfill.RunAsync((day, _) => day == May1.AddDays(1) ? throw new InvalidOperationException("source table missing") : Task.CompletedTask, CancellationToken.None);

        var view = backfill.View();
        (view.State, view.Done, view.Failed).ShouldBe((Backfill.Failed, 3, 1));
        view.Message.ShouldBe("1 of 4 day(s) failed; failed: 2024-05-02: source table missing");
    }

    [Fact]
    public async Task A_cancel_stops_the_day_in_progress_and_names_the_days_that_finished()
    {
        var backfill = new Backfill("b", "r", "j", May1, May1.AddDays(9));
        var third = new TaskCompletionSource();
        var run = backfill.RunAsync(async (day, ct) =>
        {
            if (day == May1.AddDays(2))
            {
                third.SetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }
        }, CancellationToken.None);

        await third.Task.WaitAsync(Prompt);
        backfill.Cancel();
        await run.WaitAsync(Prompt);

        var view = backfill.View();
        (view.State, view.Done, view.Failed).ShouldBe((Backfill.Cancelled, 2, 0));
        view.Message.ShouldBe("cancelled after 2 of 10 day(s); finished: 2024-05-01..2024-05-02");
    }

    [Fact]
    public async Task The_process_stopping_ends_it_as_cancelled_and_says_so()
    {
        using var stopping = new CancellationTokenSource();
        var backfill = new Backfill("b", "r", "j", May1, May1.AddDays(1));
        await backfill.RunAsync(async (day, ct) =>
        {
            await stopping.CancelAsync();
            ct.ThrowIfCancellationRequested();
        }, stopping.Token);

        backfill.View().State.ShouldBe(Backfill.Cancelled);
        backfill.View().Message.ShouldBe("stopped with the process after 0 of 2 day(s); finished: none");
    }

    [Fact]
    public void Days_are_described_as_ranges_of_consecutive_days()
    {
        Backfill.Describe([May1, May1.AddDays(1), May1.AddDays(2), May1.AddDays(5), May1.AddDays(7), May1.AddDays(8)])
            .ShouldBe("2024-05-01..2024-05-03, 2024-05-06, 2024-05-08..2024-05-09");
        Backfill.Describe([]).ShouldBe("");
    }
}
