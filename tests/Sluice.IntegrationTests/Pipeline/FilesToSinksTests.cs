using System.Globalization;
using System.Text;
using Npgsql;
using Sluice.Core;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Files.CrashRecoveryTests;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>
/// A files pipeline with sinks (the lake and a real PostgreSQL): each file reaches every sink once, and only then is it
/// done. Killed by SIGKILL at a sink's write, at another sink's and between the last commit and the move to processed/,
/// then restarted: the result equals a clean run's.
/// </summary>
public sealed class FilesToSinksTests
{
    internal const int Files = 12;
    internal const int RowsPerFile = 500;

    [Fact]
    public async Task Csv_drop_to_lake_and_postgres_killed_three_times_mid_run_equals_a_clean_run()
    {
        using var root = new TempFolder("sluice-files-sinks");
        var id = Guid.NewGuid().ToString("N")[..10];
        var (cleanRecipe, cleanSchema) = WriteRecipe(root.Sub("clean-recipe"), $"fs_clean_{id}");
        var (crashRecipe, crashSchema) = WriteRecipe(root.Sub("crash-recipe"), $"fs_crash_{id}");
        var clean = root.Sub("clean");
        var crashed = root.Sub("crashed");
        try
        {
            WriteDrops(clean);
            WriteDrops(crashed);

            var cleanRun = await SluiceProcess.RunAsync(clean, "run", cleanRecipe, "--once");
            cleanRun.Code.ShouldBe(0, cleanRun.Err);

            // sink.written:n kills after the n-th sink write of the run, before its checkpoint (the two sinks' workers race:
            // one has the files and the other may not, or neither has recorded it); files.committed after every sink had a
            // file, between its ledger entry and its move to processed/. Sinks join waiting files into one write, so
            // a run makes at least two writes (one per sink) but may make no more.
            foreach (var point in new[] { "sink.written:1", "sink.written:2", "files.committed:2" })
            {
                using var run = SluiceProcess.Start(crashed, new Dictionary<string, string> { [CrashPoint.Variable] = point }, "run", crashRecipe, "--once");
                (await run.WaitAsync(TimeSpan.FromMinutes(3))).ShouldBe(137, $"SIGKILL at {point}: {run.Stderr}");
            }

            Directory.EnumerateFiles(Path.Combine(crashed, "drops", "processing")).ShouldNotBeEmpty("the kills left files mid-way");
            var restart = await SluiceProcess.RunAsync(crashed, "run", crashRecipe, "--once");
            restart.Code.ShouldBe(0, restart.Err);

            foreach (var data in new[] { clean, crashed })
            {
                Directory.EnumerateFiles(Path.Combine(data, "drops", "processing")).ShouldBeEmpty();
                Directory.EnumerateFiles(Path.Combine(data, "drops", "failed")).ShouldBeEmpty();
                Directory.EnumerateFiles(Path.Combine(data, "drops", "processed")).Count().ShouldBe(Files + 1, "every file, and the duplicate, done");
            }

            const string lake = "SELECT count(*) AS n, count(DISTINCT id) AS d, sum(amount) AS s, sum(hash(id, \"at\", site, amount, date)) AS h FROM drops.readings";
            var expected = await Query(clean, lake);
            expected.ShouldBe(await Query(crashed, lake), "the lake after the kills equals a clean run's");
            expected.ShouldContain($"\n{Files * (RowsPerFile - 1)},{Files * (RowsPerFile - 1)},", Case.Sensitive, "each valid row once; the duplicate file and the bad rows land nothing");

            (await Pg($"SELECT count(*) || ',' || count(DISTINCT id) || ',' || sum(amount) FROM {crashSchema}.readings"))
                .ShouldBe(await Pg($"SELECT count(*) || ',' || count(DISTINCT id) || ',' || sum(amount) FROM {cleanSchema}.readings"));
            (await Pg($"SELECT count(*)::text FROM {crashSchema}.readings")).ShouldBe((Files * (RowsPerFile - 1)).ToString(CultureInfo.InvariantCulture));

            foreach (var data in new[] { clean, crashed })
            {
                Meta(data, "SELECT file_name FROM ingested_files ORDER BY file_name").ShouldBe(Enumerable.Range(0, Files).Select(f => $"readings_{f:D2}.csv").ToList(), "one ledger entry per content");
            }

            const string letters = "SELECT source || ' ' || position || ' ' || reason FROM dead_letters ORDER BY 1";
            Meta(crashed, letters).ShouldBe(Meta(clean, letters), "one letter per bad row, however often its file was handed on");
            Meta(clean, letters).Count.ShouldBe(Files);
        }
        finally
        {
            await Pg($"DROP SCHEMA IF EXISTS {cleanSchema} CASCADE; DROP SCHEMA IF EXISTS {crashSchema} CASCADE");
        }
    }

    [Fact]
    public async Task Files_pipeline_without_sinks_and_with_steps_is_refused_at_load()
    {
        using var root = new TempFolder("sluice-files-steps");
        var (recipe, _) = WriteRecipe(root.Sub("recipe"), "unused", sinks: "");
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), File.ReadAllText(Path.Combine(recipe, "recipe.yaml")).Replace("    sinks:\n", "    steps:\n      - type: attorney_events\n", StringComparison.Ordinal));
        var (code, output, err) = await SluiceProcess.RunAsync(Directory.CreateDirectory(root.Sub("data")).FullName, "validate", recipe);
        code.ShouldBe(1, err);
        (output + err).ShouldContain("steps change what goes to sinks, and this pipeline has none");
    }

    [Fact]
    public async Task Sinks_that_cannot_take_the_file_types_tables_are_refused_at_load_saying_why()
    {
        using var root = new TempFolder("sluice-files-sinks-validate");
        var (recipe, _) = WriteRecipe(Directory.CreateDirectory(root.Sub("recipe")).FullName, "unused", sinks: """
                  - type: lake
                    zone: drops
                    partition_by: loaded_at
                  - type: postgres
                    schema: drops
                    keys:
                      other: [id]
            """);
        var (code, output, err) = await SluiceProcess.RunAsync(Directory.CreateDirectory(root.Sub("data")).FullName, "validate", recipe);
        code.ShouldBe(1, err);
        (output + err).ShouldContain("lake sink lake:drops: table 'readings' has no timestamp column 'loaded_at' to partition by (partition_by); its timestamp columns: at");
        (output + err).ShouldContain("postgres sink postgres:drops: no key for table 'readings'; add it under keys: (its columns: id, at, site, amount)");
    }

    internal static (string Folder, string Schema) WriteRecipe(string folder, string schema, string? sinks = null)
    {
        Directory.CreateDirectory(Path.Combine(folder, "filetypes"));
        File.WriteAllText(Path.Combine(folder, "filetypes", "readings.yaml"), """
            name: readings
            pattern: "readings_*.csv"
            format: csv
            table: raw.readings
            event_time: at
            on_invalid: quarantine_rows
            max_bad_rows: 10
            fields:
              id: string
              at: timestamp
              site: string
              amount: integer
            """);
        sinks ??= $"""
                  - type: lake
                    zone: drops
                    partition_by: at
                  - type: postgres
                    schema: {schema}
                    keys:
                      readings: [id]
            """;
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"""
            name: files-sinks
            pipelines:
              ingest:
                source:
                  type: files
                  folder: drops
                  stable_after: 50ms
                  once_wait: 1s
                sinks:
            {sinks}
            """);
        return (folder, schema);
    }

    /// <summary>
    /// Twelve files of 500 rows (one of them bad in each: quarantined), numbered from <paramref name="first"/>, and one
    /// of them (the fourth) again under another name.
    /// </summary>
    internal static void WriteDrops(string data, int first = 0)
    {
        var incoming = Path.Combine(data, "drops", "incoming");
        Directory.CreateDirectory(incoming);
        var start = new DateTime(2026, 3, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var f = first; f < first + Files; f++)
        {
            var text = new StringBuilder("id,at,site,amount\n");
            for (var r = 0; r < RowsPerFile; r++)
            {
                var amount = r == 7 ? "lots" : (f * 1000 + r).ToString(CultureInfo.InvariantCulture);
                text.Append(CultureInfo.InvariantCulture, $"r{f:D2}-{r:D4},{start.AddMinutes(f * 37 + r * 11):yyyy-MM-ddTHH:mm:ssZ},site-{r % 7},{amount}\n");
            }

            File.WriteAllText(Path.Combine(incoming, $"readings_{f:D2}.csv"), text.ToString());
        }

        File.Copy(Path.Combine(incoming, $"readings_{first + 3:D2}.csv"), Path.Combine(incoming, $"readings_{first + 99:D2}.csv"));
    }

    internal static async Task<string> Pg(string sql)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        return (await cmd.ExecuteScalarAsync())?.ToString() ?? "";
    }

    /// <summary>The first column of every row of a query on a data folder's metadata store.</summary>
    internal static List<string> Meta(string data, string sql)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(data, "meta.db")};Mode=ReadOnly");
        connection.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        using var reader = cmd.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read()) { rows.Add(reader.GetValue(0).ToString() ?? ""); }
        return rows;
    }
}
