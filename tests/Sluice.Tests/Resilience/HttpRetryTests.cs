using System.Net;
using Microsoft.Extensions.Time.Testing;
using Sluice.Connectors.Http;

namespace Sluice.Tests.Resilience;

/// <summary>The retry of webhooks and OpenLineage: "later" answers are tried again on the injected clock, final answers are not.</summary>
public sealed class HttpRetryTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(new[] { 503, 429, 200 }, 200, 3)] // transient, then success
    [InlineData(new[] { 400, 200 }, 400, 1)] // the receiver's final word at once
    [InlineData(new[] { 503, 503, 503, 200 }, 503, 3)] // gives up after 1 + 2 retries with the last answer
    public async Task Answers_are_tried_again_only_while_transient(int[] answers, int last, int calls)
    {
        var time = new FakeTimeProvider(T0);
        var pipeline = TransientHttpRetry.Pipeline(time, retries: 2, delay: TimeSpan.FromMilliseconds(100), attemptTimeout: TimeSpan.FromSeconds(5));
        var made = 0;
        var run = pipeline.ExecuteAsync(_ => ValueTask.FromResult(new HttpResponseMessage((HttpStatusCode)answers[made++])), CancellationToken.None).AsTask();
        await TransientRetryTests.Drive(time, run);

        using var response = await run;
        ((int)response.StatusCode).ShouldBe(last);
        made.ShouldBe(calls);
    }
}
