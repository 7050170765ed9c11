using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Sluice.Connectors.ClickHouse;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.SinkConformance.MirrorBatches;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// The ClickHouse mirror's flagged rows and the source's low-water mark (<see cref="Core.Pipeline.RecordBatch.SettledBelow"/>),
/// on the real server: a key whose newest row is a delete's or a truncate's flag below the mark loses every row (one
/// mutation, at most every <c>prune_every</c>); a flag above it stays and still refuses an older change of its key, a
/// key written again after its delete stays, and the truncate still keeps out a change older than itself.
/// </summary>
public sealed class ClickHouseMirrorPruneTests : IDisposable
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(10);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-07T00:00:00Z", CultureInfo.InvariantCulture));
    private readonly Engine _engine;
    private readonly string _database = "prune_" + Guid.NewGuid().ToString("N")[..8];

    public ClickHouseMirrorPruneTests() => _engine = new Engine(_time);

    public void Dispose()
    {
        MirrorReplayTests.ClickHouseAsync($"DROP DATABASE IF EXISTS {_database}").GetAwaiter().GetResult();
        _engine.Dispose();
    }

    [Fact]
    public async Task Keys_whose_newest_row_is_a_flag_below_the_mark_lose_every_row_and_what_the_flags_refused_stays_refused()
    {
        await using var sink = new ClickHouseSink(_engine.Services, new ClickHouseOptions
        {
            Url = new Uri(ServerSettings.ClickHouseUrl), Database = _database, Table = "items", OrderBy = [], Mirror = true, InsertLinger = TimeSpan.Zero, PruneEvery = Every,
        });
        Task Write(Core.Pipeline.RecordBatch batch) => sink.WriteAsync(batch, "mirror", CancellationToken.None);
        await Write(Changes(10, ("c", 1, "a", 1), ("c", 2, "b", 2), ("c", 3, "c", 3), ("c", 4, "d", 4)));
        await Write(Changes(20, ("d", 1, null, 0)));
        await Write(Changes(30, ("d", 2, null, 0)));
        await Write(Changes(40, ("d", 3, null, 0)));
        await Write(Changes(45, ("c", 2, "b-again", 22)));
        (await KeysAsync()).ShouldBe([1, 2, 3, 4]);
        (await FlaggedAsync()).ShouldBe([1, 3], "keys 1 and 3 deleted; key 2 written again after its delete");

        // A sink's first prune is due at once. Key 1's newest row is its flag at 20, below 35: all its rows go. Key 2 was
        // written again after its delete (45), key 3's flag is above the mark: both stay as they are.
        await Write(Changes(50, ("c", 5, "e", 5)) with { SettledBelow = 35 });
        await WaitMutationsDoneAsync();
        (await KeysAsync()).ShouldBe([2, 3, 4, 5], "key 1 (its flag at 20, below 35) lost every row; key 2's flag at 30 is not its newest row");
        (await FlaggedAsync()).ShouldBe([3], "the flag above the mark stays");
        (await CurrentAsync()).ShouldBe(["2 b-again", "4 d", "5 e"]);

        // Above the mark, older than key 3's delete (stored late): its flag still refuses it.
        await Write(Changes(38, ("c", 3, "c-late", 3)));
        (await CurrentAsync()).ShouldBe(["2 b-again", "4 d", "5 e"], "the deleted key's older insert does not bring it back");

        // The mark rose, but within prune_every of the last prune: nothing is started.
        _time.Advance(Every - TimeSpan.FromSeconds(1));
        await Write(Changes(60, ("t", 0, null, 0), ("c", 6, "f", 6)) with { SettledBelow = 55 });
        await WaitMutationsDoneAsync();
        (await KeysAsync()).ShouldBe([2, 3, 4, 5, 6], "no prune within prune_every of the last one");
        (await FlaggedAsync()).ShouldBe([2, 3, 4, 5]);
        (await CurrentAsync()).ShouldBe(["6 f"], "the truncate flagged every key alive before it");

        // prune_every on: keys 3 (its delete) and 2, 4, 5 (the truncate's flags at 60, below 65) lose every row; 6 stays.
        _time.Advance(TimeSpan.FromSeconds(1));
        await Write(Changes(70, ("u", 6, "f2", 7)) with { SettledBelow = 65 });
        await WaitMutationsDoneAsync();
        (await KeysAsync()).ShouldBe([6], "every key whose newest row was a flag below 65 lost its rows");
        (await FlaggedAsync()).ShouldBeEmpty();

        // A change of a key the truncate never saw, older than the truncate: the table's floor still keeps it out.
        await Write(Changes(55, ("c", 7, "before-truncate", 7)));
        (await CurrentAsync()).ShouldBe(["6 f2"], "a change below the last truncate is not written, with or without flags");
        (await MirrorReplayTests.ClickHouseAsync($"SELECT count() FROM system.mutations WHERE database = '{_database}' AND table = 'items'")).ShouldBe("2", "one mutation per prune that had something to remove");
    }

    /// <summary>The keys with any stored row, merged or not (a background merge keeps a key's newest row, so this does not depend on merges).</summary>
    private Task<List<long>> KeysAsync() => IdsAsync($"SELECT DISTINCT id FROM {_database}.items ORDER BY id");

    /// <summary>The keys whose newest row is a flag (FINAL, which merges do not change).</summary>
    private Task<List<long>> FlaggedAsync() => IdsAsync($"SELECT id FROM {_database}.items FINAL WHERE _deleted = 1 ORDER BY id");

    private static async Task<List<long>> IdsAsync(string sql) =>
        (await MirrorReplayTests.ClickHouseAsync(sql + " FORMAT TabSeparated")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(t => long.Parse(t, CultureInfo.InvariantCulture)).ToList();

    private async Task<List<string>> CurrentAsync() =>
        (await MirrorReplayTests.ClickHouseAsync($"SELECT concat(toString(id), ' ', name) FROM {_database}.items_current ORDER BY id FORMAT TabSeparated"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>Until the table's mutations are done (18.16 runs them in the background), 60 s at most.</summary>
    private async Task WaitMutationsDoneAsync()
    {
        var sql = $"SELECT count() FROM system.mutations WHERE database = '{_database}' AND is_done = 0";
        for (var waited = 0; waited < 600; waited++)
        {
            if (await MirrorReplayTests.ClickHouseAsync(sql) == "0") { return; }
            await Task.Delay(100);
        }

        throw new TimeoutException($"the mirror's mutations are not done after 60 s: {await MirrorReplayTests.ClickHouseAsync($"SELECT * FROM system.mutations WHERE database = '{_database}' FORMAT TSV")}");
    }
}
