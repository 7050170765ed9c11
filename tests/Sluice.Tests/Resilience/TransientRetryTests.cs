using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Resilience;
using Sluice.Core.Status;

namespace Sluice.Tests.Resilience;

/// <summary>
/// The one retry of every sink (<see cref="TransientRetry"/>): a transient failure is tried again after doubling pauses
/// on the engine's clock and shows in the status board until the write lands; a permanent one is thrown at once; a
/// bounded retry gives up with the number of attempts and the last reason.
/// </summary>
public sealed class TransientRetryTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static bool IsTransient(Exception e) => e is TimeoutException;

    [Fact]
    public async Task A_transient_failure_is_tried_again_after_doubling_pauses_and_the_status_clears_once_it_lands()
    {
        var time = new FakeTimeProvider(T0);
        var status = new StatusBoard(time).Pipeline("r", "p", "postgres_cdc").Sink("s");
        var seen = new List<RetryAttempt>();
        var recovered = 0;
        var retry = new TransientRetry("sink 's'", new RetryOptions(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(300)), time, IsTransient)
        {
            Retrying = a =>
            {
                seen.Add(a);
                status.Retrying(a.Attempt, a.Error.Message, time.GetUtcNow());
            },
            Recovered = n =>
            {
                recovered = n;
                status.Recovered();
            },
        };
        var calls = 0;
        var run = retry.RunAsync(_ =>
        {
            calls++;
            return calls <= 3 ? Task.FromException(new TimeoutException($"away {calls}")) : Task.CompletedTask;
        }, CancellationToken.None);

        await Until(() => seen.Count == 1);
        calls.ShouldBe(1, "the next attempt waits for the clock");
        status.Retries.ShouldBe(1);
        await Drive(time, run);

        calls.ShouldBe(4);
        seen.Select(a => a.Attempt).ShouldBe([1, 2, 3]);
        seen.Select(a => a.Delay).ShouldBe([TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(300)], "doubling, capped at the longest pause");
        seen[^1].Error.Message.ShouldBe("away 3");
        recovered.ShouldBe(4);
        status.Retries.ShouldBe(3);
        (time.GetUtcNow() - T0).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(800), "the pauses ran on the injected clock");
    }

    [Fact]
    public async Task A_permanent_failure_is_thrown_at_once()
    {
        var time = new FakeTimeProvider(T0);
        var retrying = 0;
        var retry = new TransientRetry("sink 's'", new RetryOptions(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1)), time, IsTransient) { Retrying = _ => retrying++ };
        var calls = 0;
        var error = await Should.ThrowAsync<InvalidOperationException>(retry.RunAsync(_ =>
        {
            calls++;
            throw new InvalidOperationException("column of another type");
        }, CancellationToken.None));

        error.Message.ShouldBe("column of another type");
        calls.ShouldBe(1);
        retrying.ShouldBe(0);
    }

    [Fact]
    public async Task A_bounded_retry_gives_up_after_its_attempts_with_the_last_reason()
    {
        var time = new FakeTimeProvider(T0);
        var retry = new TransientRetry("postgres sink postgres:analytics", new RetryOptions(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), Attempts: 3), time, IsTransient);
        var calls = 0;
        var run = retry.RunAsync(_ =>
        {
            calls++;
            return Task.FromException(new TimeoutException($"server away ({calls})"));
        }, CancellationToken.None);

        var error = await Should.ThrowAsync<RetriesExhaustedException>(Drive(time, run));
        calls.ShouldBe(3);
        error.Attempts.ShouldBe(3);
        error.Message.ShouldBe("postgres sink postgres:analytics: gave up after 3 attempts: server away (3)");
        error.InnerException.ShouldBeOfType<TimeoutException>();
    }

    [Fact]
    public async Task A_stop_while_waiting_ends_the_retry_without_calling_it_a_failure()
    {
        var time = new FakeTimeProvider(T0);
        using var stop = new CancellationTokenSource();
        var retry = new TransientRetry("sink 's'", new RetryOptions(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)), time, IsTransient) { Retrying = _ => stop.Cancel() };
        var calls = 0;
        Exception? error = null;
        try
        {
            await retry.RunAsync(_ =>
            {
                calls++;
                return Task.FromException(new TimeoutException("away"));
            }, stop.Token);
        }
        catch (Exception e)
        {
            error = e;
        }

        error.ShouldBeAssignableTo<OperationCanceledException>();
        calls.ShouldBe(1);
    }

    [Fact]
    public async Task One_attempt_in_all_is_no_retry_and_still_says_it_gave_up()
    {
        var retry = new TransientRetry("sink 's'", new RetryOptions(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), Attempts: 1), new FakeTimeProvider(T0), IsTransient);
        var error = await Should.ThrowAsync<RetriesExhaustedException>(retry.RunAsync(_ => Task.FromException(new TimeoutException("away")), CancellationToken.None));
        error.Message.ShouldBe("sink 's': gave up after 1 attempts: away");
    }

    /// <summary>Moves the fake clock on until <paramref name="task"/> ends (each pause is a timer on that clock); 60 s of real time at most (a loaded CI machine).</summary>
    internal static async Task Drive(FakeTimeProvider time, Task task)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!task.IsCompleted && DateTime.UtcNow < deadline)
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            await Task.Delay(1);
        }

        await task.WaitAsync(TimeSpan.FromSeconds(1));
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) { throw new TimeoutException("condition not met within 60 s"); }
            await Task.Delay(1);
        }
    }
}
