using Microsoft.Extensions.Time.Testing;
using Sluice.Core;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Metadata;
using Sluice.Lake;
using Sluice.Lake.Storage;

namespace Sluice.IntegrationTests.Lake;

/// <summary>
/// The lake manifest on both metadata providers: a data folder's SQLite and a cluster's shared Postgres schema, the
/// same tests for each. A "worker" is a lake store of its own (its own store instance and connections, its own clock)
/// over the same manifest and the same folder of Parquet files, as the workers of a cluster share them.
/// </summary>
public abstract class LakeManifestConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    private static readonly LakeTable Table = new("t", "events", "day", FieldType.Date, [new FieldSpec("id", FieldType.Integer, true)]);

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sluice-lake-" + Guid.NewGuid().ToString("N")[..8]);

    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        if (Directory.Exists(_folder)) { Directory.Delete(_folder, recursive: true); }
        GC.SuppressFinalize(this);
    }

    /// <summary>A worker's lake: its own store instance on the shared manifest, the shared folder of files, and <paramref name="clock"/> (the fixture's by default).</summary>
    protected LakeStore Worker(string name, TimeProvider? clock = null) =>
        new(new DataDirectory(Path.Combine(_folder, "data-" + name)), Fixture.OpenStore(name), clock ?? Fixture.Time, new LocalLakeStorage(Path.Combine(_folder, "lake")));

    private static async Task<long> CommitAsync(LakeStore lake, string day, params long[] ids)
    {
        using var stager = lake.BeginStaging("test");
        await stager.AddPartitionAsync(Table, day, [ids.Select(i => (long?)i).ToArray()], ids.Length, CancellationToken.None);
        return lake.Commit(stager);
    }

    private static long Rows(LakeStore lake) => lake.FileEntries(Table.QualifiedName).Sum(f => f.Rows);

    /// <summary>A lake sink's commit of a cluster log's events: rows keyed by their sequence, and the sequences recorded with them.</summary>
    private static async Task CommitLogAsync(LakeStore lake, LogSequences events)
    {
        var ids = events.Ranges.SelectMany(r => Enumerable.Range((int)r.First, (int)r.Count)).Select(i => (long?)i).ToArray();
        using var stager = lake.BeginStaging("test");
        await stager.AddPartitionAsync(Table, "2025-11-08", [ids], ids.Length, CancellationToken.None);
        lake.Commit(stager, (c, tx) => lake.LogCommits.Record(c, tx, "sink", events));
    }

    [Fact]
    public async Task A_log_sinks_committed_sequences_are_seen_by_every_worker_and_a_second_commit_of_one_commits_nothing()
    {
        var (a, b) = (Worker("a"), Worker("b"));
        var first = LogSequences.Of("S@1", [1, 2, 3, 5]);
        a.LogCommits.Committed("sink", first).ShouldBeEmpty();
        await CommitLogAsync(a, first);

        // Worker b is given 3..7 again (a died before acknowledging 3 and 5): it sees what a committed.
        var again = LogSequences.Of("S@1", [3, 4, 5, 6, 7]);
        var fresh = again.Except(b.LogCommits.Committed("sink", again));
        fresh.Ranges.ShouldBe([new SequenceRange(4, 4), new SequenceRange(6, 7)]);

        // A commit that looked before a's and claims 3..7 whole is refused whole.
        await Should.ThrowAsync<LakeConflictException>(() => CommitLogAsync(b, again));
        Rows(b).ShouldBe(4, "nothing of the refused commit is in the lake");

        await CommitLogAsync(b, fresh);
        Rows(a).ShouldBe(7, "each sequence once");
        a.LogCommits.Committed("sink", LogSequences.Of("S@1", [1, 100])).ShouldBe([new SequenceRange(1, 7)], "touching runs are joined: one row");
        a.LogCommits.Committed("sink", LogSequences.Of("S@2", [1, 7])).ShouldBeEmpty("a stream created again is another log");
        a.LogCommits.Committed("other", first).ShouldBeEmpty("and another sink has its own");
    }

    [Fact]
    public async Task Commits_are_current_in_manifest_order_and_a_replaced_partition_is_deleted_only_after_its_grace()
    {
        var lake = Worker("a");
        lake.Register(Table);
        var first = await CommitAsync(lake, "2026-03-01", 1, 2, 3);
        var second = await CommitAsync(lake, "2026-03-02", 4, 5);
        second.ShouldBeGreaterThan(first);
        lake.Tables().Single().QualifiedName.ShouldBe("t.events");
        lake.Partitions("t.events").ShouldBe(["2026-03-01", "2026-03-02"]);
        lake.FileEntries("t.events").Select(f => f.Rows).ShouldBe([3L, 2L]);
        lake.FileEntries("t.events", maxId: first).Count.ShouldBe(1);
        var (changed, maxId) = lake.PartitionsChangedSince("t.events", first);
        changed.ShouldBe(["2026-03-02"]);
        maxId.ShouldBe(second);
        var replaced = lake.Files("t.events", ["2026-03-01"]).Single();

        using (var stager = lake.BeginStaging("recompute"))
        {
            await stager.AddPartitionAsync(Table, "2026-03-01", [new long?[] { 1, 2, 3, 6 }], 4, CancellationToken.None);
            lake.Commit(stager, replacePartitions: [(Table, "2026-03-01")]);
        }

        Rows(lake).ShouldBe(6);
        lake.Garbage().ShouldBe([Path.GetRelativePath(lake.Root, replaced)]);
        lake.SweepOrphans();
        File.Exists(replaced).ShouldBeTrue("a query that listed it may still read it during the grace");
        Fixture.Time.Advance(LakeStore.GarbageGrace + TimeSpan.FromSeconds(1));
        lake.SweepOrphans();
        File.Exists(replaced).ShouldBeFalse();
        lake.Garbage().ShouldBeEmpty();
        lake.FileEntries("t.events").ShouldAllBe(f => File.Exists(f.Path));
        Worker("b").FileEntries("t.events").Sum(f => f.Rows).ShouldBe(6, "another worker reads the same manifest");
    }

    [Fact]
    public async Task Compaction_merges_small_files_into_one_with_every_row_and_the_sweep_deletes_the_replaced_ones_after_the_grace()
    {
        var lake = Worker("a");
        lake.Register(Table);
        for (var i = 0; i < 4; i++) { await CommitAsync(lake, "2026-03-01", i * 10, i * 10 + 1); }
        var small = lake.Files("t.events");

        new LakeCompactor(lake).Compact(Table, minFiles: 2, smallRows: 1000, CancellationToken.None).ShouldBe(4);

        lake.FileEntries("t.events").Count.ShouldBe(1);
        Rows(lake).ShouldBe(8);
        Fixture.Time.Advance(LakeStore.GarbageGrace + TimeSpan.FromSeconds(1));
        lake.SweepOrphans();
        small.ShouldAllBe(f => !File.Exists(f));
        lake.FileEntries("t.events").ShouldAllBe(f => File.Exists(f.Path));
    }

    [Fact]
    public async Task A_sweep_that_takes_a_commits_reservation_for_dead_makes_that_commit_fail_rather_than_name_a_deleted_file()
    {
        var committer = Worker("a");
        committer.Register(Table);
        // The sweeper's clock is an hour ahead: every reservation looks abandoned to it, as a commit stalled past the grace does.
        var sweeper = Worker("b", new FakeTimeProvider(Fixture.Time.GetUtcNow() + TimeSpan.FromHours(1)));
        committer.Published = () => sweeper.SweepOrphans();

        await Should.ThrowAsync<LakeConflictException>(() => CommitAsync(committer, "2026-03-01", 1, 2, 3));

        committer.Published = null;
        committer.FileEntries("t.events").ShouldBeEmpty("the manifest names no file the sweep deleted");
        Directory.EnumerateFiles(committer.Root, "*.parquet", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(committer.Storage.StagingRoot, StringComparison.Ordinal)).ShouldBeEmpty();
        await CommitAsync(committer, "2026-03-01", 1, 2, 3);
        Rows(committer).ShouldBe(3);
    }

    [Fact]
    public async Task One_worker_committing_while_another_compacts_and_sweeps_loses_no_row_and_no_current_file()
    {
        var committer = Worker("a");
        var maintainer = Worker("b");
        committer.Register(Table);
        const int Commits = 40;
        var done = 0;
        var writing = Task.Run(async () =>
        {
            for (var i = 0; i < Commits; i++)
            {
                await CommitAsync(committer, i % 2 == 0 ? "2026-03-01" : "2026-03-02", i * 3, i * 3 + 1, i * 3 + 2);
                Interlocked.Increment(ref done);
            }
        });

        var merged = 0;
        while (!writing.IsCompleted)
        {
            merged += new LakeCompactor(maintainer).Compact(Table, minFiles: 3, smallRows: 1000, CancellationToken.None);
            maintainer.SweepOrphans();
        }

        await writing;
        merged += new LakeCompactor(maintainer).Compact(Table, minFiles: 2, smallRows: 1000, CancellationToken.None);
        Fixture.Time.Advance(LakeStore.GarbageGrace + TimeSpan.FromSeconds(1));
        maintainer.SweepOrphans();

        merged.ShouldBeGreaterThan(0, "the maintainer compacted while the committer wrote");
        Rows(committer).ShouldBe(Commits * 3, "every committed row is current once, whatever was merged meanwhile");
        committer.FileEntries("t.events").ShouldAllBe(f => File.Exists(f.Path), "no current file was deleted");
        committer.Partitions("t.events").ShouldBe(["2026-03-01", "2026-03-02"]);
    }
}

public sealed class SqliteLakeManifestTests : LakeManifestConformance<SqliteMetadataFixture>;

public sealed class PostgresLakeManifestTests : LakeManifestConformance<PostgresMetadataFixture>
{
    [Fact]
    public async Task Compaction_runs_on_one_worker_at_a_time()
    {
        var a = Worker("a");
        var b = Worker("b");
        a.Register(Table2);
        for (var i = 0; i < 3; i++)
        {
            using var stager = a.BeginStaging("test");
            await stager.AddPartitionAsync(Table2, "", [new long?[] { i }], 1, CancellationToken.None);
            a.Commit(stager);
        }

        using (LakeMaintenance.TryEnter(a.Metadata).ShouldNotBeNull())
        {
            LakeMaintenance.TryEnter(b.Metadata).ShouldBeNull("another worker holds the maintenance lock");
            new LakeCompactor(b).Compact(Table2, minFiles: 2, smallRows: 1000, CancellationToken.None).ShouldBe(0, "it skips its turn");
        }

        new LakeCompactor(b).Compact(Table2, minFiles: 2, smallRows: 1000, CancellationToken.None).ShouldBe(3, "once the lock is free");
    }

    private static readonly LakeTable Table2 = LakeTable.Unpartitioned("t", "plain", [new FieldSpec("id", FieldType.Integer, true)]);
}
