using Sluice.Cluster;
using Sluice.Connectors.Pull;
using Sluice.Core.DeadLetters;
using Sluice.IntegrationTests.Metadata;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// The pull's fence per page (<see cref="PullLeaseFence"/>, <see cref="PulledPages.Record"/>) on the shared store: a
/// worker whose pull lease was taken over (it was paused past it) records no page, and a take-over waits for a page
/// being recorded under the lease, so the new holder's cursor has it. Two workers' leases on one store and a fake clock
/// make the take-over exact; <see cref="ClusterPullTests"/> does it with real workers, SIGSTOP and SIGCONT.
/// </summary>
public sealed class PullFenceTests : IDisposable
{
    private const string Lease = "pull:r/p";
    private const string Source = "salesforce:r/p";
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(3);
    private readonly PostgresMetadataFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public void A_page_of_a_worker_whose_pull_lease_was_taken_over_is_refused_and_writes_nothing()
    {
        var (a, b) = (Leases("a"), Leases("b"));
        var first = a.TryTake(0).ShouldNotBeNull();
        var pages = new PulledPages(_fixture.Store, Source);
        var letters = new DeadLetterStore(_fixture.Store, _fixture.Time);
        pages.Record(Page(1, "r1"), letters, Source, [], new PullLeaseFence(_fixture.Store, a, first));

        // Worker a is paused past its lease; worker b takes the pull over and records the next page.
        _fixture.Time.Advance(Duration + TimeSpan.FromSeconds(1));
        var second = b.TryTake(0).ShouldNotBeNull();
        second.Token.ShouldBe(first.Token + 1);
        pages.Record(Page(2, "r2"), letters, Source, [], new PullLeaseFence(_fixture.Store, b, second));

        // Worker a wakes up with a page of its own at the next position: refused, nothing of it written, not even a dead letter.
        var bad = new PulledRecord("r3", new DateTime(2026, 2, 1, 8, 0, 3, DateTimeKind.Utc), "{\"Id\":\"r3\"}"u8.ToArray());
        var refused = Should.Throw<PullFencedException>(() =>
            pages.Record(Page(3, "r3"), letters, Source, [(bad, "refused")], new PullLeaseFence(_fixture.Store, a, first)));
        refused.Message.ShouldContain($"{Lease}: the pull's lease (token {first.Token}) is another worker's now");
        pages.Load(null).Pages.Select(p => p.Position).ShouldBe([1L, 2L], "the pages of the lease's holders only");
        letters.Count(Source).ShouldBe(0, "nothing of the refused page, its dead letters neither");
        Should.Throw<PullFencedException>(() => new PullLeaseFence(_fixture.Store, a, first).Check(), "the check on its own (a mapped pull's, before its store's append) refuses too");
        new PullLeaseFence(_fixture.Store, b, second).Check();
    }

    [Fact]
    public async Task A_take_over_waits_for_the_page_being_recorded_under_the_lease_so_the_new_holder_goes_on_from_it()
    {
        var (a, b) = (Leases("a"), Leases("b"));
        var first = a.TryTake(0).ShouldNotBeNull();
        _fixture.Time.Advance(Duration + TimeSpan.FromSeconds(1));

        // The lease has expired but nobody took it yet: a's page goes in, and b's take-over waits for its commit.
        using var c = _fixture.Store.Connect();
        using var tx = c.BeginTransaction();
        new PullLeaseFence(_fixture.Store, a, first).Check(c, tx);
        var taking = Task.Run(() => b.TryTake(0));
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        taking.IsCompleted.ShouldBeFalse("the lease's row is locked by the page's transaction");
        tx.Commit();
        var second = (await taking.WaitAsync(TimeSpan.FromSeconds(60))).ShouldNotBeNull();
        second.Token.ShouldBe(first.Token + 1);
    }

    private PartitionLeases Leases(string worker) => new(_fixture.OpenStore(worker), Lease, worker, 1, Duration, _fixture.Time);

    private static PulledPage Page(long position, string id)
    {
        var stamp = new DateTime(2026, 2, 1, 8, 0, (int)position, DateTimeKind.Utc);
        var record = new PulledRecord(id, stamp, System.Text.Encoding.UTF8.GetBytes($"{{\"Id\":\"{id}\"}}"));
        return new PulledPage(position, PullWatermark.Empty.Advance([(id, stamp)], TimeSpan.FromMinutes(5)), [record]);
    }
}
