using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Cli;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.Lake;

/// <summary>The orphan sweep deletes only what it can prove is its own uncommitted garbage.</summary>
public sealed class OrphanSweepTests
{
    [Fact]
    public async Task Files_of_a_commit_that_failed_after_its_renames_are_swept_and_files_the_lake_does_not_know_are_not()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var engine = new Engine(clock);
        var lake = engine.Services.Lake;
        var table = new LakeTable("t", "sweep", "date", FieldType.Date, [new FieldSpec("id", FieldType.Integer, true)]);
        lake.Register(table);
        using (var stager = lake.BeginStaging("test"))
        {
            await stager.AddPartitionAsync(table, "2025-11-08", [new long?[] { 1, 2, 3 }], 3, CancellationToken.None);
            lake.Commit(stager);
        }

        var committed = lake.Files("t.sweep").Single();
        var partition = Path.GetDirectoryName(committed)!;

        // A compaction whose input was replaced meanwhile fails after renaming its output into the partition.
        using (var failing = lake.BeginStaging("test"))
        {
            await failing.AddPartitionAsync(table, "2025-11-08", [new long?[] { 1, 2, 3 }], 3, CancellationToken.None);
            Should.Throw<LakeConflictException>(() => lake.Commit(failing, replaceFiles: [Path.Combine(partition, "gone.parquet")]));
        }

        var orphan = Directory.GetFiles(partition, "*.parquet").Single(f => f != committed);
        var foreign = Path.Combine(partition, "copied-in-by-hand.parquet");
        File.Copy(committed, foreign);

        clock.Advance(TimeSpan.FromMinutes(6));
        lake.SweepOrphans();

        File.Exists(orphan).ShouldBeFalse("a file its commit reserved and never committed is garbage");
        File.Exists(foreign).ShouldBeTrue("a file the lake cannot prove it wrote is left alone");
        File.Exists(committed).ShouldBeTrue();
        lake.UnknownFiles().ShouldBe([foreign]);
        engine.Count("SELECT count(*) FROM t.sweep").ShouldBe(3, "the foreign file is not queried either");
    }

    [Fact]
    public async Task A_parquet_file_someone_else_put_in_a_partition_survives_a_start_and_is_reported()
    {
        using var data = await MetadataLossTests.VehicleDataAsync();
        var (_, foreign) = CopyOfALakeFile(data.Path, "someone-elses.parquet");
        File.SetLastWriteTimeUtc(foreign, DateTime.UtcNow.AddHours(-1));

        var run = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once");
        run.Code.ShouldBe(0, run.Err);

        File.Exists(foreign).ShouldBeTrue();
        run.Err.ShouldContain($"1 Parquet file(s) under {Path.Combine(data.Path, "lake")} are in no table's manifest (for example {foreign})");
    }

    [Fact]
    public async Task A_file_reserved_before_a_crash_between_rename_and_commit_is_swept_at_the_next_start()
    {
        using var data = await MetadataLossTests.VehicleDataAsync();
        var (file, crashed) = CopyOfALakeFile(data.Path, "20251108000000000-crashed-00000.parquet");
        var reservedAt = DateTime.UtcNow.AddHours(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
        using (var c = new SqliteConnection($"Data Source={Path.Combine(data.Path, "meta.db")};Pooling=false"))
        {
            c.Open();
            using var insert = c.CreateCommand();
            insert.CommandText = "INSERT INTO lake_reserved(path, origin, reserved_at) VALUES ($p, 'crashed', $t)";
            insert.Parameters.AddWithValue("$p", Path.GetRelativePath(Path.Combine(data.Path, "lake"), crashed));
            insert.Parameters.AddWithValue("$t", reservedAt);
            insert.ExecuteNonQuery();
        }

        var run = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once");
        run.Code.ShouldBe(0, run.Err);

        File.Exists(crashed).ShouldBeFalse();
        File.Exists(file).ShouldBeTrue();
        run.Err.ShouldNotContain("in no table's manifest");
    }

    /// <summary>A committed file of the vehicle events and a copy of it under another name in the same partition.</summary>
    private static (string File, string Copy) CopyOfALakeFile(string data, string name)
    {
        var file = MetadataLossTests.ParquetFiles(data).First(f => f.Contains("vehicle_events", StringComparison.Ordinal));
        var copy = Path.Combine(Path.GetDirectoryName(file)!, name);
        File.Copy(file, copy);
        return (file, copy);
    }
}
