using Sluice.Connectors.Postgres;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// The <c>postgres_cdc</c> source's own state (slot record, tables read, snapshot requests and the initial snapshot's
/// progress) against each provider, as <see cref="MetadataStoreConformance{TFixture}"/> does for the core stores: in a
/// cluster the worker that takes a slot over reads what its predecessor recorded, so the second store instance here
/// (another worker) must see every write of the first.
/// </summary>
public abstract class CdcStateConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    private static readonly CdcTable Content = new("content", ChangePolicy.Emit, ChangePolicy.Emit, Key: ["content_id"]);
    private static readonly CdcTable Events = new("engagement_events", ChangePolicy.Ignore, ChangePolicy.Ignore, Key: ["event_id"]);

    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void The_slot_record_and_the_tables_read_are_kept_and_its_idle_position_only_moves_forward()
    {
        var first = new PgCdcState(Fixture.Store, Fixture.Time);
        first.EnsureSchema();
        first.Get("s", "db").ShouldBeNull();
        first.Created("s", "db", consistentPoint: 1000, snapshot: true);
        first.TablesRead("s", "db", [Content, Events], 1000, replace: true);
        first.Advanced("s", "db", 5000);
        first.Advanced("s", "db", 4000);

        var other = new PgCdcState(Fixture.OpenStore("b"), Fixture.Time);
        other.EnsureSchema();
        other.Get("s", "db").ShouldBe(new SlotRecord(1000, true, 5000), "an older idle position never moves the recorded one back");
        other.Tables("s", "db").OrderBy(t => t.Table, StringComparer.Ordinal).ShouldBe(new[] { ("public", "content"), ("public", "engagement_events") });
        other.TablesRead("s", "db", [Content], 6000, replace: true);
        first.Tables("s", "db").ShouldBe(new[] { ("public", "content") });
        other.Created("s", "db", consistentPoint: 7000, snapshot: false);
        first.Get("s", "db").ShouldBe(new SlotRecord(7000, false, 0), "a re-created slot starts its idle position over");
    }

    [Fact]
    public void Snapshot_requests_and_the_initial_snapshots_progress_survive_a_change_of_worker()
    {
        var state = new PgCdcState(Fixture.Store, Fixture.Time);
        state.EnsureSchema();
        state.Created("s", "db", consistentPoint: 1000, snapshot: true);
        // Two workers of a cluster in turn: each request names the worker that moved it last.
        var progress = new PgSnapshotProgress(Fixture.Store, Fixture.Time, "worker-a");
        progress.EnsureSchema();
        var id = progress.Submit(new SnapshotRequest("s", "db", "r", "cdc", "public", "content", "content_id > 5", 100, PgSnapshotProgress.OnDemand) { Total = 40 });
        progress.Started(id, null);
        progress.ChunkDone(id, "[\"17\"]", read: 100, emitted: 98, superseded: 2);
        progress.InitialProgress("s", "db", 1000, [Content, Events], 0, "[\"3\"]", done: false);
        progress.InitialProgress("s", "db", 1000, [Content, Events], 1, "[\"9\"]", done: false);

        var other = new PgSnapshotProgress(Fixture.OpenStore("b"), Fixture.Time, "worker-b");
        var request = other.Next("s", "db").ShouldNotBeNull();
        (request.Id, request.Status, request.LastKey, request.Total, request.RowsRead, request.RowsEmitted, request.Superseded, request.Chunks)
            .ShouldBe((id, PgSnapshotProgress.Running, (string?)"[\"17\"]", (long?)40, 100L, 98L, 2L, 1L));
        request.Where.ShouldBe("content_id > 5");
        request.Worker.ShouldBe("worker-a");
        var initial = other.Initial("s", "db", 1000);
        initial.Count.ShouldBe(2);
        initial[("public", "content")].ShouldBe(((string?)null, true), "a table before the one in progress is complete");
        initial[("public", "engagement_events")].ShouldBe(((string?)"[\"9\"]", false));

        other.ResumeInitial("s", "db", 1200, [new SnapshotRequest("s", "db", "r", "", "public", "engagement_events", null, 100, PgSnapshotProgress.InitialKind) { LastKey = "[\"9\"]" }]);
        other.Finished(id);
        var resumed = progress.Next("s", "db").ShouldNotBeNull();
        (resumed.Table, resumed.Kind, resumed.LastKey).ShouldBe(("engagement_events", PgSnapshotProgress.InitialKind, (string?)"[\"9\"]"));
        progress.Get(id)!.Status.ShouldBe(PgSnapshotProgress.Done);
        progress.Get(id)!.Worker.ShouldBe("worker-b", "the worker that finished it");
        resumed.Worker.ShouldBeNull("no worker moved the resumed rest yet");
        progress.OfSlot("s", "db", 10).Count.ShouldBe(2);
        state.Get("s", "db").ShouldBe(new SlotRecord(1000, false, 1200), "the slot's snapshot is not taken again, and its position is the source's own");
    }
}

public sealed class SqliteCdcStateTests : CdcStateConformance<SqliteMetadataFixture>;

public sealed class PostgresCdcStateTests : CdcStateConformance<PostgresMetadataFixture>;
