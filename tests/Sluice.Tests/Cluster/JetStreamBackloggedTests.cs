using Microsoft.Extensions.Time.Testing;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;

namespace Sluice.Tests.Cluster;

/// <summary>
/// When a worker refuses requests for the cluster's backlog (<see cref="JetStreamLog.Backlogged"/>): past
/// <c>max_pending</c> as last noted, and only while that figure is fresh (10 s, on the host's clock): a figure its reader
/// stopped updating is not trusted. No NATS server is needed: the figure is noted by hand, the clock is a fake.
/// </summary>
public sealed class JetStreamBackloggedTests
{
    private static JetStreamLog Log(TimeProvider time) =>
        new(new ClusterOptions(["nats://127.0.0.1:1"], 4, 1, TimeSpan.FromSeconds(30)) { MaxPending = 100 }, "r", new HttpIngestOptions { Stream = "events" }, time: time);

    [Fact]
    public async Task Past_max_pending_requests_are_refused_until_the_figure_is_older_than_10_s()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 18, 0, 0, TimeSpan.Zero));
        await using var log = Log(time);
        log.Backlogged.ShouldBeNull("nothing noted yet");

        log.NotePending(101);
        log.Backlogged.ShouldNotBeNull().ShouldContain("101 messages");
        time.Advance(TimeSpan.FromSeconds(10));
        log.Backlogged.ShouldNotBeNull("10 s old is still fresh");
        time.Advance(TimeSpan.FromMilliseconds(1));
        log.Backlogged.ShouldBeNull("a figure older than 10 s is not trusted: the stream's byte bound alone applies");

        log.NotePending(150);
        log.Backlogged.ShouldNotBeNull("noted again, fresh again");
    }

    [Fact]
    public async Task Within_max_pending_requests_are_taken()
    {
        var time = new FakeTimeProvider();
        await using var log = Log(time);
        log.NotePending(100);
        log.Backlogged.ShouldBeNull("at max_pending, not past it");
        log.NotePending(-1);
        log.Backlogged.ShouldBeNull("unknown (no node answered)");
    }
}
