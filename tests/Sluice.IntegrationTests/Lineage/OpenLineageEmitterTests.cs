using System.Net;
using Sluice.Connectors.OpenLineage;
using Sluice.Core;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Lineage;

/// <summary>Sending lineage never holds a run up: retries on a flaky server, a warning and a drop on a dead one.</summary>
public sealed class OpenLineageEmitterTests
{
    private static readonly LineageDataset[] None = [];

    [Fact]
    public void A_server_that_fails_twice_gets_the_event_on_the_third_attempt()
    {
        var handler = new FlakyHandler(failures: 2);
        var logs = new CapturingLogs();
        var emitter = new OpenLineageEmitter(Options("http://127.0.0.1:9/"), TimeProvider.System, logs, handler);
        emitter.Start("r/job", None, None);
        emitter.Dispose();

        handler.Calls.ShouldBe(3);
        handler.Delivered.ShouldBe(1);
        logs.Text.ShouldNotContain("dropped");
    }

    [Fact]
    public void A_dead_server_costs_a_warning_per_event()
    {
        var logs = new CapturingLogs();
        using var refusing = FreePort.Refusing();
        var emitter = new OpenLineageEmitter(Options($"http://127.0.0.1:{refusing.Port}/"), TimeProvider.System, logs);
        var run = emitter.Start("r/job", [new LineageDataset("ns/lake", "raw.sales")], None);
        emitter.End(run, LineageEnd.Fail, "boom");
        emitter.Dispose();

        // Connection refused on every attempt: both events are dropped, each with a warning naming the job and run.
        logs.Text.ShouldContain($"START event of r/job run {run.Id} dropped after 4 attempt(s)");
        logs.Text.ShouldContain($"FAIL event of r/job run {run.Id} dropped after 4 attempt(s)");
    }

    [Fact]
    public async Task A_run_goes_on_while_the_server_hangs()
    {
        var handler = new HangingHandler();
        var emitter = new OpenLineageEmitter(Options("http://127.0.0.1:9/"), TimeProvider.System, new CapturingLogs(), handler);
        var run = emitter.Start("r/job", None, None);
        (await Task.WhenAny(handler.Entered.Task, Task.Delay(TimeSpan.FromSeconds(30)))).ShouldBe(handler.Entered.Task);

        // The START event is stuck at the server, yet the run ends without waiting for it.
        emitter.End(run, LineageEnd.Complete);
        handler.Answered.ShouldBe(0);

        handler.Release.SetResult();
        emitter.Dispose();
        handler.Answered.ShouldBe(2);
    }

    [Fact]
    public void Lineage_is_off_without_a_url_and_a_bad_url_is_refused_by_name()
    {
        OpenLineageOptions.Parse(null, null).ShouldBeNull();
        OpenLineageOptions.Parse(" ", "x").ShouldBeNull();
        var options = OpenLineageOptions.Parse("http://marquez:5000/", null)!;
        options.Endpoint.ToString().ShouldBe("http://marquez:5000/api/v1/lineage");
        options.Namespace.ShouldBe("sluice");
        Should.Throw<SluiceException>(() => OpenLineageOptions.Parse("marquez:5000", null))
            .Message.ShouldBe("OpenLineage: OPENLINEAGE_URL='marquez:5000' is not an http(s) URL (for example http://localhost:5000)");
    }

    private static OpenLineageOptions Options(string url) =>
        OpenLineageOptions.Parse(url, "ns")! with { RetryDelay = TimeSpan.FromMilliseconds(5) };

    private sealed class HangingHandler : HttpMessageHandler
    {
        private int _answered;

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Answered => Volatile.Read(ref _answered);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Entered.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
            Interlocked.Increment(ref _answered);
            return new HttpResponseMessage(HttpStatusCode.Created);
        }
    }

    private sealed class FlakyHandler(int failures) : HttpMessageHandler
    {
        private int _calls;
        private int _delivered;

        public int Calls => Volatile.Read(ref _calls);

        public int Delivered => Volatile.Read(ref _delivered);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _calls) <= failures)
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));
            }

            Interlocked.Increment(ref _delivered);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.Created));
        }
    }
}
