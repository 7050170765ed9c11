using Microsoft.Extensions.Time.Testing;
using static Sluice.IntegrationTests.SinkConformance.MirrorBatches;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// The postgres mirror's tombstones (<c>_sluice_mirror_deleted</c>) and the source's low-water mark
/// (<see cref="Core.Pipeline.RecordBatch.SettledBelow"/>): a tombstone below the mark goes, in the write that carries
/// it, the long way (a sink's first write of a table) and the short one (its floor known); one above it stays and still
/// refuses an older change of its key, which can come late (docs/SCALING.md, "Tombstones and the low-water mark").
/// </summary>
public sealed class PostgresMirrorTombstoneTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-07T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    public PostgresMirrorTombstoneTests() => Fixture = new(_time);

    private PostgresSinkFixture Fixture { get; }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Fixture.DisposeAsync();

    [Fact]
    public async Task Tombstones_below_the_low_water_mark_go_and_a_late_change_above_it_is_still_refused()
    {
        await using (var sink = Fixture.CreateMirror())
        {
            await sink.WriteAsync(Changes(10, ("c", 1, "a", 1), ("c", 2, "b", 2), ("c", 3, "c", 3)), "mirror", CancellationToken.None);
            await sink.WriteAsync(Changes(20, ("d", 1, null, 0)), "mirror", CancellationToken.None);
            await sink.WriteAsync(Changes(30, ("d", 2, null, 0)), "mirror", CancellationToken.None);
            await sink.WriteAsync(Changes(40, ("d", 3, null, 0)), "mirror", CancellationToken.None);
            (await Fixture.ReadTombstonesAsync()).ShouldBe(["[1]@20", "[2]@30", "[3]@40"], "one tombstone per deleted key, at its delete");

            // This sink knows the table's floor from its own last commit: the short way, one round trip.
            await sink.WriteAsync(Changes(50, ("c", 4, "d", 4)) with { SettledBelow = 35 }, "mirror", CancellationToken.None);
            (await Fixture.ReadTombstonesAsync()).ShouldBe(["[3]@40"], "the tombstones below the mark are gone, the one above it is kept");

            // Above the mark, older than its key's delete: stored late (a batch the relay published again). Still refused.
            await sink.WriteAsync(Changes(38, ("c", 3, "c-late", 3)), "mirror", CancellationToken.None);
            (await Fixture.ReadMirrorAsync()).ShouldBe(["id=4 name=d qty=4"], "the deleted key's older insert does not bring it back");

            // A mark that did not rise prunes nothing more (and a lower one never prunes above itself).
            await sink.WriteAsync(Changes(55, ("u", 4, "d1", 5)) with { SettledBelow = 30 }, "mirror", CancellationToken.None);
            (await Fixture.ReadTombstonesAsync()).ShouldBe(["[3]@40"]);
        }

        // A new sink reads the floor first: the long way, in its transaction.
        await using (var sink = Fixture.CreateMirror())
        {
            await sink.WriteAsync(Changes(60, ("u", 4, "d2", 6)) with { SettledBelow = 45 }, "mirror", CancellationToken.None);
        }

        (await Fixture.ReadTombstonesAsync()).ShouldBeEmpty("the last tombstone is below the new mark");
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=4 name=d2 qty=6"]);
    }

    [Fact]
    public async Task A_sink_prunes_a_table_at_most_once_a_second_however_often_the_mark_rises()
    {
        // In one process the mark rises with nearly every batch; a DELETE in each batch's transaction is work for
        // nothing a second could not wait for.
        await using var sink = Fixture.CreateMirror();
        await sink.WriteAsync(Changes(10, ("c", 1, "a", 1), ("c", 2, "b", 2), ("c", 3, "c", 3), ("c", 4, "d", 4)), "mirror", CancellationToken.None);
        await sink.WriteAsync(Changes(20, ("d", 1, null, 0)), "mirror", CancellationToken.None);
        await sink.WriteAsync(Changes(30, ("d", 2, null, 0)), "mirror", CancellationToken.None);
        await sink.WriteAsync(Changes(40, ("d", 3, null, 0)), "mirror", CancellationToken.None);

        await sink.WriteAsync(Changes(50, ("u", 4, "d1", 5)) with { SettledBelow = 25 }, "mirror", CancellationToken.None);
        (await Fixture.ReadTombstonesAsync()).ShouldBe(["[2]@30", "[3]@40"], "a sink's first prune of a table is due at once");

        _time.Advance(TimeSpan.FromMilliseconds(900));
        await sink.WriteAsync(Changes(60, ("u", 4, "d2", 6)) with { SettledBelow = 35 }, "mirror", CancellationToken.None);
        (await Fixture.ReadTombstonesAsync()).ShouldBe(["[2]@30", "[3]@40"], "the mark rose, but within a second of the last prune");

        _time.Advance(TimeSpan.FromMilliseconds(100));
        await sink.WriteAsync(Changes(70, ("u", 4, "d3", 7)) with { SettledBelow = 45 }, "mirror", CancellationToken.None);
        (await Fixture.ReadTombstonesAsync()).ShouldBeEmpty("a second on, the next rise prunes below the new mark");
        (await Fixture.ReadMirrorAsync()).ShouldBe(["id=4 name=d3 qty=7"]);
    }
}
