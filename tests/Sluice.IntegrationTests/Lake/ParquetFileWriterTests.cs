using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.Lake;

/// <summary>Sluice writes the lake's Parquet itself; DuckDB (the reader every query goes through) must read back exactly what was written.</summary>
public sealed class ParquetFileWriterTests
{
    private static readonly FieldSpec[] Fields =
    [
        new("s", FieldType.String, false), new("i", FieldType.Integer, false), new("d", FieldType.Double, false),
        new("b", FieldType.Boolean, false), new("t", FieldType.Timestamp, false), new("day", FieldType.Date, false),
        new("empty", FieldType.String, false),
    ];

    private static Array[] Columns(int rows, int seed)
    {
        var random = new Random(seed);
        var s = new string?[rows];
        var i = new long?[rows];
        var d = new double?[rows];
        var b = new bool?[rows];
        var t = new DateTime?[rows];
        var day = new DateOnly?[rows];
        var empty = new string?[rows];
        string[] texts = ["", "a", "grüße", "東京", "zz", "A", new string('x', 300), "emoji 🙂"];
        for (var r = 0; r < rows; r++)
        {
            s[r] = r % 7 == 3 ? null : texts[random.Next(texts.Length)] + (r % 2 == 0 ? r.ToString(CultureInfo.InvariantCulture) : "");
            i[r] = r % 5 == 1 ? null : random.NextInt64(long.MinValue, long.MaxValue);
            d[r] = r % 6 == 2 ? null : (random.NextDouble() - 0.5) * 1e12;
            b[r] = r % 4 == 0 ? null : random.Next(2) == 1;
            // Before and after 1970, with sub-millisecond ticks (kept to the millisecond, rounded down).
            t[r] = r % 9 == 4 ? null : new DateTime(1950, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(random.NextInt64(0, 100L * 365 * TimeSpan.TicksPerDay));
            day[r] = r % 8 == 5 ? null : DateOnly.FromDayNumber(random.Next(700_000, 760_000));
        }

        return [s, i, d, b, t, day, empty];
    }

    private static object? Expected(Array column, int row) => column.GetValue(row) switch
    {
        DateTime t => new DateTime(t.Ticks - (((t.Ticks % TimeSpan.TicksPerMillisecond) + TimeSpan.TicksPerMillisecond) % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc),
        var v => v,
    };

    private static DuckDBConnection Open()
    {
        var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SET TimeZone = 'UTC'";
        cmd.ExecuteNonQuery();
        return db;
    }

    [Fact]
    public async Task DuckDB_reads_back_every_value_and_null_of_every_type_across_row_groups()
    {
        using var folder = new TempFolder("parquet");
        var path = Path.Combine(folder.Path, "all.parquet");
        var groups = new[] { Columns(3000, 1), Columns(1, 2), Columns(4097, 3) };
        await using (var writer = await ParquetFileWriter.CreateAsync(path, Fields, CancellationToken.None))
        {
            foreach (var g in groups) { await writer.WriteRowGroupAsync(g, g[0].Length, CancellationToken.None); }
            await writer.CompleteAsync(CancellationToken.None);
            writer.Rows.ShouldBe(7098);
        }

        using var db = Open();
        using (var types = db.CreateCommand())
        {
            types.CommandText = $"SELECT typeof(s), typeof(i), typeof(d), typeof(b), typeof(t), typeof(day), typeof(empty) FROM read_parquet('{path}') LIMIT 1";
            using var r = types.ExecuteReader();
            r.Read().ShouldBeTrue();
            Enumerable.Range(0, 7).Select(r.GetString).ShouldBe(["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP WITH TIME ZONE", "DATE", "VARCHAR"]);
        }

        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT s, i, d, b, t, day, empty FROM read_parquet('{path}')";
        using var reader = cmd.ExecuteReader();
        var expected = groups.SelectMany(g => Enumerable.Range(0, g[0].Length).Select(row => g.Select(c => Expected(c, row)).ToArray())).ToList();
        var at = 0;
        while (reader.Read())
        {
            for (var c = 0; c < Fields.Length; c++)
            {
                var actual = reader.IsDBNull(c) ? null : reader.GetValue(c);
                if (actual is DateTime t) { actual = DateTime.SpecifyKind(t, DateTimeKind.Utc); }
                if (actual is DateOnly == false && expected[at][c] is DateOnly && actual is DateTime dt) { actual = DateOnly.FromDateTime(dt); }
                actual.ShouldBe(expected[at][c], $"row {at}, column {Fields[c].Name}");
            }

            at++;
        }

        at.ShouldBe(expected.Count);
    }

    [Fact]
    public async Task Text_given_as_utf8_is_written_byte_for_byte_as_the_same_text_given_as_strings()
    {
        using var folder = new TempFolder("parquet");
        var schema = new TableSchema("t", Fields);
        var groups = new[] { Columns(3000, 5), Columns(1, 6), Columns(700, 7) };
        var fromStrings = Path.Combine(folder.Path, "strings.parquet");
        var fromUtf8 = Path.Combine(folder.Path, "utf8.parquet");
        await using (var writer = await ParquetFileWriter.CreateAsync(fromStrings, Fields, CancellationToken.None))
        {
            foreach (var g in groups) { await writer.WriteRowGroupAsync(g, g[0].Length, CancellationToken.None); }
            await writer.CompleteAsync(CancellationToken.None);
        }

        await using (var writer = await ParquetFileWriter.CreateAsync(fromUtf8, Fields, CancellationToken.None))
        {
            foreach (var g in groups)
            {
                var batch = Utf8Batch(schema, g);
                batch.Text(0).ShouldNotBeNull();
                await writer.WriteRowGroupAsync(batch, CancellationToken.None);
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        // Values, nulls and statistics alike: the bytes of the two files are the same.
        (await File.ReadAllBytesAsync(fromUtf8)).ShouldBe(await File.ReadAllBytesAsync(fromStrings));
    }

    /// <summary>The columns as a batch whose text columns are built as UTF-8, as ingest builds them.</summary>
    private static ColumnBatch Utf8Batch(TableSchema schema, Array[] columns)
    {
        var builder = new ColumnBatchBuilder(schema, 16, i => schema.Fields[i].Type == FieldType.String);
        var rows = columns[0].Length;
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns.Length; c++)
            {
                switch (builder[c], columns[c].GetValue(r))
                {
                    case (_, null): break;
                    case (Utf8ColumnBuilder b, string v): b.Set(System.Text.Encoding.UTF8.GetBytes(v)); break;
                    case (ValueColumnBuilder<long> b, long v): b.Set(v); break;
                    case (ValueColumnBuilder<double> b, double v): b.Set(v); break;
                    case (ValueColumnBuilder<bool> b, bool v): b.Set(v); break;
                    case (ValueColumnBuilder<DateTime> b, DateTime v): b.Set(v); break;
                    case (ValueColumnBuilder<DateOnly> b, DateOnly v): b.Set(v); break;
                    default: throw new InvalidOperationException($"column {c}");
                }
            }

            builder.CommitRow();
        }

        return builder.Flush();
    }

    [Fact]
    public async Task Statistics_are_exact_so_filters_that_skip_row_groups_lose_nothing()
    {
        using var folder = new TempFolder("parquet");
        var path = Path.Combine(folder.Path, "stats.parquet");
        var groups = Enumerable.Range(0, 6).Select(g => Columns(2000, 10 + g)).ToList();
        // One group's text column is all null, another's double column holds a NaN: both must still filter right.
        groups[2][0] = new string?[2000];
        ((double?[])groups[3][2])[7] = double.NaN;
        await using (var writer = await ParquetFileWriter.CreateAsync(path, Fields, CancellationToken.None))
        {
            foreach (var g in groups) { await writer.WriteRowGroupAsync(g, 2000, CancellationToken.None); }
            await writer.CompleteAsync(CancellationToken.None);
        }

        var rows = groups.SelectMany(g => Enumerable.Range(0, 2000).Select(r => g.Select(c => Expected(c, r)).ToArray())).ToList();
        using var db = Open();
        long Count(string where)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM read_parquet('{path}') WHERE {where}";
            return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        var cut = new DateTime(2001, 6, 1, 0, 0, 0, DateTimeKind.Utc);
        Count("t >= TIMESTAMPTZ '2001-06-01 00:00:00+00'").ShouldBe(rows.Count(r => r[4] is DateTime t && t >= cut));
        Count("t < TIMESTAMPTZ '1960-01-01 00:00:00+00'").ShouldBe(rows.Count(r => r[4] is DateTime t && t < new DateTime(1960, 1, 1, 0, 0, 0, DateTimeKind.Utc)));
        Count("i > 0").ShouldBe(rows.Count(r => r[1] is long i && i > 0));
        Count("d < -1e11").ShouldBe(rows.Count(r => r[2] is double d && d < -1e11));
        Count("s = 'grüße'").ShouldBe(rows.Count(r => (string?)r[0] == "grüße"));
        Count("s >= 'zz'").ShouldBe(rows.Count(r => r[0] is string s && string.CompareOrdinal(s, "zz") >= 0 && !s.Any(ch => ch > 127)) + rows.Count(r => r[0] is string s && s.Any(ch => ch > 127) && System.Text.Encoding.UTF8.GetBytes(s).AsSpan().SequenceCompareTo("zz"u8) >= 0));
        Count("s IS NULL").ShouldBe(rows.Count(r => r[0] is null));
        Count("b").ShouldBe(rows.Count(r => r[3] is true));
        Count("day = DATE '1970-01-01' + 10").ShouldBe(rows.Count(r => r[5] is DateOnly day && day == new DateOnly(1970, 1, 11)));
        Count("empty IS NULL").ShouldBe(rows.Count);
    }

    [Theory]
    [InlineData("b|ba|bz|b|a|c", "a", "c")]
    [InlineData("bb|b||ba|", "", "bb")]
    [InlineData("é|e|ez|f|é2", "e", "é2")]
    [InlineData("x|x|x", "x", "x")]
    [InlineData("m|ma|mz|my|m0", "m", "mz")]
    public async Task A_text_column_s_minimum_and_maximum_are_its_smallest_and_largest_utf8_bytes(string values, string min, string max)
    {
        using var folder = new TempFolder("parquet");
        var path = Path.Combine(folder.Path, "minmax.parquet");
        var texts = values.Split('|').Select(v => (string?)v).Append(null).ToArray();
        var rows = texts.Length;
        await using (var writer = await ParquetFileWriter.CreateAsync(path, [new FieldSpec("s", FieldType.String, false)], CancellationToken.None))
        {
            await writer.WriteRowGroupAsync([texts], rows, CancellationToken.None);
            await writer.CompleteAsync(CancellationToken.None);
        }

        using var db = Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT stats_min_value, stats_max_value, stats_null_count FROM parquet_metadata('{path}')";
        using var reader = cmd.ExecuteReader();
        reader.Read().ShouldBeTrue();
        reader.GetString(0).ShouldBe(min);
        reader.GetString(1).ShouldBe(max);
        reader.GetInt64(2).ShouldBe(1);
    }

    [Fact]
    public async Task A_filter_on_a_row_group_s_exact_minimum_or_maximum_finds_that_row()
    {
        using var folder = new TempFolder("parquet");
        var path = Path.Combine(folder.Path, "bounds.parquet");
        var base0 = new DateTime(1969, 12, 31, 23, 59, 59, 999, DateTimeKind.Utc).AddTicks(999);
        await using (var writer = await ParquetFileWriter.CreateAsync(path, Fields, CancellationToken.None))
        {
            // Disjoint ranges per row group, so wrong statistics would make a reader skip the group holding the row.
            for (var g = 0; g < 4; g++)
            {
                var rows = 500;
                var s = Enumerable.Range(0, rows).Select(r => (string?)$"g{g}-{r:D4}").ToArray();
                var i = Enumerable.Range(0, rows).Select(r => (long?)(g * 1000 + r)).ToArray();
                var d = Enumerable.Range(0, rows).Select(r => (double?)(g * 1000 + r) / 4).ToArray();
                var b = Enumerable.Range(0, rows).Select(r => (bool?)(g % 2 == 0)).ToArray();
                var t = Enumerable.Range(0, rows).Select(r => (DateTime?)base0.AddDays(g * 10).AddMilliseconds(r)).ToArray();
                var day = Enumerable.Range(0, rows).Select(r => (DateOnly?)new DateOnly(2020, 1, 1).AddDays(g * 1000 + r)).ToArray();
                await writer.WriteRowGroupAsync([s, i, d, b, t, day, new string?[rows]], rows, CancellationToken.None);
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        using var db = Open();
        long Count(string where)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT count(*) FROM read_parquet('{path}') WHERE {where}";
            return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }

        foreach (var g in new[] { 0, 2, 3 })
        {
            Count($"i = {g * 1000}").ShouldBe(1);
            Count($"i = {g * 1000 + 499}").ShouldBe(1);
            Count($"s = 'g{g}-0000'").ShouldBe(1);
            Count($"s = 'g{g}-0499'").ShouldBe(1);
            Count($"d = {(g * 1000 + 499) / 4.0}").ShouldBe(1);
            Count($"day = DATE '2020-01-01' + {g * 1000}").ShouldBe(1);
            Count($"day = DATE '2020-01-01' + {g * 1000 + 499}").ShouldBe(1);
        }

        // 1969-12-31 23:59:59.9990999 is kept as .999 (rounded down, not towards the epoch).
        Count("t = TIMESTAMPTZ '1969-12-31 23:59:59.999+00'").ShouldBe(1);
        Count("t = TIMESTAMPTZ '1970-01-01 00:00:00.498+00'").ShouldBe(1);
        Count("t = TIMESTAMPTZ '1970-01-30 23:59:59.999+00'").ShouldBe(1, "group 3's first row");
        Count("b").ShouldBe(1000);
        Count("NOT b").ShouldBe(1000);
    }

    [Fact]
    public async Task Exact_decimals_are_DECIMAL_of_their_precision_or_text_and_DuckDB_reads_every_digit()
    {
        using var folder = new TempFolder("parquet");
        var path = Path.Combine(folder.Path, "decimals.parquet");
        FieldSpec[] fields = [new("p5", FieldType.Decimal, false, 5, 2), new("p18", FieldType.Decimal, false, 18, 4), new("p38", FieldType.Decimal, false, 38, 0), new("any", FieldType.Decimal, false)];
        string?[][] columns =
        [
            ["-999.99", "0.01", null, "123.40"],
            ["99999999999999.9999", "-0.0001", "1.0000", null],
            ["99999999999999999999999999999999999999", "-99999999999999999999999999999999999999", "0", "-1"],
            ["12345678901234567890123456789012345678901234.5678901234", "NaN", "-Infinity", null],
        ];
        await ParquetFileWriter.WriteAsync(path, fields, new ColumnBatch(new TableSchema("t", fields), columns, 4), CancellationToken.None);

        using var db = Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT typeof(p5), typeof(p18), typeof(p38), typeof(\"any\"), CAST(p5 AS VARCHAR), CAST(p18 AS VARCHAR), CAST(p38 AS VARCHAR), \"any\" FROM read_parquet('{path}')";
        using var reader = cmd.ExecuteReader();
        var row = 0;
        while (reader.Read())
        {
            (reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)).ShouldBe(("DECIMAL(5,2)", "DECIMAL(18,4)", "DECIMAL(38,0)", "VARCHAR"));
            for (var c = 0; c < 4; c++)
            {
                (reader.IsDBNull(4 + c) ? null : reader.GetString(4 + c)).ShouldBe(columns[c][row], $"row {row}, column {fields[c].Name}");
            }

            row++;
        }

        row.ShouldBe(4);
    }
}
