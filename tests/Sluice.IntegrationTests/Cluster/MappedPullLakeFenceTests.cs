using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Cluster;
using Sluice.Connectors.Pull;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;
using Sluice.Hosting;
using Sluice.IntegrationTests.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A mapped pull's page into the cluster's shared lake (<see cref="LakeReminderWarehouse.AppendAsync"/>) under the
/// pull's fence: the lease is read in the page's own manifest transaction, so a worker whose lease was taken over
/// (paused past it) commits nothing of its page, neither its rows, nor its dead letters, nor its watermark, however
/// late it wakes. Two workers' leases on one store and a fake clock make the take-over exact;
/// <see cref="ClusterMappedPullLakeTests"/> runs the pull on real workers.
/// </summary>
public sealed class MappedPullLakeFenceTests : IDisposable
{
    private const string Letters = "postgres_pull:r/p";
    private const string Watermark = "pull:r/p";
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(3);
    private readonly PostgresMetadataFixture _fixture = new();
    private readonly TempFolder _temp = new("sluice-mapped-fence");

    public void Dispose()
    {
        _fixture.Dispose();
        _temp.Dispose();
    }

    [Fact]
    public async Task A_page_into_the_shared_lake_of_a_worker_whose_pull_lease_was_taken_over_commits_nothing()
    {
        var shared = _fixture.Shared("lake") with { Folder = Directory.CreateDirectory(_temp.Sub("shared")).FullName };
        using var services = new EngineServices(new DataDirectory(_temp.Sub("data")), _fixture.Time, NullLoggerFactory.Instance, shared: shared);
        var (a, b) = (Leases("a"), Leases("b"));
        var first = a.TryTake(0).ShouldNotBeNull();
        await using var warehouse = new LakeReminderWarehouse(services, "reminders");
        await warehouse.InitialiseAsync(CancellationToken.None);
        await warehouse.AppendAsync(Batch("m1"), Letters, Watermark, "after m1", new PullLeaseFence(_fixture.Store, a, first), CancellationToken.None);

        // Worker a is paused past its lease; worker b takes the pull over and lands the next page.
        _fixture.Time.Advance(Duration + TimeSpan.FromSeconds(1));
        var second = b.TryTake(0).ShouldNotBeNull();
        await warehouse.AppendAsync(Batch("m2"), Letters, Watermark, "after m2", new PullLeaseFence(_fixture.Store, b, second), CancellationToken.None);

        // Worker a wakes with a page of its own (a row and a refused record): its commit is refused inside the transaction.
        var late = Batch("m3", refused: true);
        late.Rejected.Count.ShouldBe(1);
        var refused = await Should.ThrowAsync<PullFencedException>(() =>
            warehouse.AppendAsync(late, Letters, Watermark, "after m3", new PullLeaseFence(_fixture.Store, a, first), CancellationToken.None));
        refused.Message.ShouldContain($"the pull's lease (token {first.Token}) is another worker's now");

        services.Lake.FileEntries("reminders.attorney_events").Sum(f => f.Rows).ShouldBe(2, "the pages of the lease's holders only");
        services.Lake.FileEntries("reminders.source_event").Sum(f => f.Rows).ShouldBe(2);
        new CheckpointStore(services.Metadata, _fixture.Time).Get(Watermark).ShouldBe("after m2", "the watermark of the refused page was not committed");
        services.DeadLetters.Count(Letters).ShouldBe(0, "nor its dead letters");
    }

    private PartitionLeases Leases(string worker) => new(_fixture.OpenStore(worker), "pull:r/p", worker, 1, Duration, _fixture.Time);

    /// <summary>A Mongo-shaped event <paramref name="id"/> through the recipe's mapping, and with <paramref name="refused"/> one the mapping refuses (no attorney_email).</summary>
    private static NormalisedBatch Batch(string id, bool refused = false)
    {
        var errors = new ConfigErrors();
        var mapping = RecordMapping.Load(Path.Combine(TestPaths.Recipe("repeat-reminder"), "mappings", "mongo.yaml"), AttorneyEventModel.Schema, errors);
        errors.ThrowIfAny();
        using var protector = new FieldProtector(new byte[32]);
        var events = new List<RawEvent> { Event(id, "\"attorney_email\": \"att@example.test\", ") };
        if (refused) { events.Add(Event(id + "-bad", "")); }
        return new EventNormaliser(mapping!, protector, ClientIdProtection.Encrypt).Normalise(events);
    }

    private static RawEvent Event(string id, string attorney) => new(Encoding.UTF8.GetBytes(
        $$"""{"_id": "{{id}}", "type": "note", "event_timestamp": "2026-07-01T10:00:00Z", "case_id": "CASE-1", "client_id": "CLIENT-1", {{attorney}}"status": "closed"}"""),
        new DateTime(2026, 7, 1, 10, 0, 1, DateTimeKind.Utc), id);
}
