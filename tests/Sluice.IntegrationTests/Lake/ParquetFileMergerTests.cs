using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;
using Sluice.Lake.Parquet;

namespace Sluice.IntegrationTests.Lake;

/// <summary>Compaction of files Sluice wrote copies their row groups byte for byte; what DuckDB reads must not change.</summary>
public sealed class ParquetFileMergerTests
{
    private static readonly FieldSpec[] Fields =
    [
        new("id", FieldType.Integer, false), new("name", FieldType.String, false), new("t", FieldType.Timestamp, false),
        new("x", FieldType.Double, false), new("ok", FieldType.Boolean, false), new("day", FieldType.Date, false),
    ];

    private static async Task<string> WriteAsync(string folder, string name, long first, params int[] groups)
    {
        var path = Path.Combine(folder, name);
        await using var writer = await ParquetFileWriter.CreateAsync(path, Fields, CancellationToken.None);
        var next = first;
        foreach (var rows in groups)
        {
            var id = new long?[rows];
            var text = new string?[rows];
            var t = new DateTime?[rows];
            var x = new double?[rows];
            var ok = new bool?[rows];
            var day = new DateOnly?[rows];
            for (var r = 0; r < rows; r++, next++)
            {
                id[r] = next;
                text[r] = next % 11 == 0 ? null : $"n{next:D7}";
                t[r] = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(next);
                x[r] = next % 7 == 0 ? null : next / 3.0;
                ok[r] = next % 2 == 0;
                day[r] = DateOnly.FromDayNumber(730_000 + (int)(next / 1000));
            }

            await writer.WriteRowGroupAsync([id, text, t, x, ok, day], rows, CancellationToken.None);
        }

        await writer.CompleteAsync(CancellationToken.None);
        return path;
    }

    private static DuckDBConnection Open()
    {
        var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        return db;
    }

    private static List<string> Rows(DuckDBConnection db, string from)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT id, name, epoch_ms(t), x, ok, day FROM {from}";
        using var reader = cmd.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, 6).Select(c => reader.IsDBNull(c) ? "null" : Convert.ToString(reader.GetValue(c), CultureInfo.InvariantCulture))));
        }

        return rows;
    }

    [Fact]
    public async Task A_merged_file_reads_as_its_inputs_in_order_with_working_statistics()
    {
        using var folder = new TempFolder("merge");
        var a = await WriteAsync(folder.Path, "a.parquet", 0, 20_000, 17_000);
        var b = await WriteAsync(folder.Path, "b.parquet", 37_000, 30_000);
        var c = await WriteAsync(folder.Path, "c.parquet", 67_000, 16_500, 25_000);
        var inputs = new[] { a, b, c }.Select(p => (p, ParquetFileMerger.TryRead(p, Fields)!)).ToList();
        inputs.ShouldAllBe(i => i.Item2 != null);
        inputs.Sum(i => i.Item2.Rows).ShouldBe(108_500);
        var merged = Path.Combine(folder.Path, "merged.parquet");
        ParquetFileMerger.Merge(inputs, Fields, merged).ShouldBe(108_500);

        using var db = Open();
        Rows(db, $"read_parquet('{merged}')").ShouldBe(Rows(db, $"read_parquet(['{a}', '{b}', '{c}'])"));
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = $"SELECT count(*), count(DISTINCT row_group_id) FROM parquet_metadata('{merged}') WHERE column_id = 0";
            using var reader = cmd.ExecuteReader();
            reader.Read();
            reader.GetInt64(1).ShouldBe(5, "the five row groups, copied as they were");
        }

        long Count(string where)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM read_parquet('{merged}') WHERE {where}";
            return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        Count("id = 36999").ShouldBe(1);
        Count("id = 37000").ShouldBe(1);
        Count("name = 'n0067000'").ShouldBe(1);
        Count("t >= TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL 67000 SECOND").ShouldBe(41_500);
        Count("name IS NULL").ShouldBe(Enumerable.Range(0, 108_500).Count(i => i % 11 == 0));

        // A merged file is Sluice's too: it can be merged again.
        var again = ParquetFileMerger.TryRead(merged, Fields);
        again.ShouldNotBeNull();
        again.Groups.Count.ShouldBe(5);
    }

    [Fact]
    public async Task Files_of_another_writer_or_another_schema_are_not_copied()
    {
        using var folder = new TempFolder("merge");
        var ours = await WriteAsync(folder.Path, "ours.parquet", 0, 100);
        ParquetFileMerger.TryRead(ours, Fields[..5]).ShouldBeNull("a column fewer");
        ParquetFileMerger.TryRead(ours, [.. Fields[..1], Fields[1] with { Type = FieldType.Integer }, .. Fields[2..]]).ShouldBeNull("a column of another type");
        var duck = Path.Combine(folder.Path, "duck.parquet");
        using var db = Open();
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = $"COPY (SELECT * FROM read_parquet('{ours}')) TO '{duck}' (FORMAT parquet)";
            cmd.ExecuteNonQuery();
        }

        ParquetFileMerger.TryRead(duck, Fields).ShouldBeNull("DuckDB wrote it");
        var broken = Path.Combine(folder.Path, "broken.parquet");
        File.WriteAllBytes(broken, File.ReadAllBytes(ours)[..^30]);
        ParquetFileMerger.TryRead(broken, Fields).ShouldBeNull("cut off");
    }

    [Fact]
    public async Task Compaction_copies_large_row_groups_and_re_encodes_small_ones()
    {
        using var engine = new Engine();
        var lake = engine.Services.Lake;
        var table = new LakeTable("m", "events", "date", FieldType.Date, Fields);
        lake.Register(table);
        for (var i = 0; i < 3; i++) { await CommitAsync(lake, table, i * 20_000L, 20_000); }
        new LakeCompactor(lake).Compact(table, 2, 250_000, CancellationToken.None).ShouldBe(3);
        var big = lake.FileEntries(table.QualifiedName).Single();
        CreatedBy(big.Path).ShouldBe("sluice", "large row groups are copied");

        for (var i = 0; i < 4; i++) { await CommitAsync(lake, table, 100_000 + (i * 500L), 500); }
        new LakeCompactor(lake).Compact(table, 2, 30_000, CancellationToken.None).ShouldBe(4);
        var entries = lake.FileEntries(table.QualifiedName).ToList();
        entries.Count.ShouldBe(2);
        CreatedBy(entries.Single(e => e.Rows == 2000).Path).ShouldStartWith("DuckDB", Case.Insensitive, "small row groups are re-encoded");
        engine.Count("SELECT count(*) FROM m.events").ShouldBe(62_000);
        engine.Count("SELECT count(DISTINCT id) FROM m.events").ShouldBe(62_000);
    }

    [Fact]
    public async Task A_partition_of_both_kinds_copies_the_large_files_and_re_encodes_the_small_ones_apart()
    {
        using var engine = new Engine();
        var lake = engine.Services.Lake;
        var table = new LakeTable("m", "mixed", "date", FieldType.Date, Fields);
        lake.Register(table);
        long next = 0;
        foreach (var rows in new[] { 20_000, 300, 18_000, 400, 500, 17_000 })
        {
            await CommitAsync(lake, table, next, rows);
            next += rows;
        }
        new LakeCompactor(lake).Compact(table, 4, 250_000, CancellationToken.None).ShouldBe(6);
        var entries = lake.FileEntries(table.QualifiedName).OrderBy(e => e.Rows).ToList();
        entries.Select(e => e.Rows).ShouldBe([1_200L, 55_000L]);
        CreatedBy(entries[0].Path).ShouldStartWith("DuckDB", Case.Insensitive);
        CreatedBy(entries[1].Path).ShouldBe("sluice");
        engine.Count("SELECT count(DISTINCT id) FROM m.mixed").ShouldBe(56_200);
        engine.Count("SELECT max(id) FROM m.mixed").ShouldBe(56_199);
    }

    /// <summary>One file of rows numbered from <paramref name="first"/>, committed to the table's 2025-01-01 partition.</summary>
    private static async Task CommitAsync(LakeStore lake, LakeTable table, long first, int rows)
    {
        using var stager = lake.BeginStaging("test");
        var temp = await WriteAsync(stager.Folder, $"w{first}.parquet", first, rows);
        stager.AddWritten(table, "2025-01-01", temp, rows);
        lake.Commit(stager);
    }

    private static string CreatedBy(string path)
    {
        using var db = Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT created_by FROM parquet_file_metadata('{path}')";
        return (string)cmd.ExecuteScalar()!;
    }
}
