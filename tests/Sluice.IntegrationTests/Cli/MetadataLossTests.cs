using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Cli;

/// <summary>A lost, damaged or read-only metadata store never deletes data, and every command says so in one line.</summary>
public sealed class MetadataLossTests
{
    private static readonly string[][] Commands =
    [
        ["run", "vehicle-files", "--once"],
        ["query", "SELECT count(*) FROM raw_data.vehicle_events"],
        ["tokens", "list"],
        ["dlq", "list"],
        ["job", "history"],
    ];

    [Fact]
    public async Task Meta_db_removed_after_landing_is_refused_then_recover_restores_the_lake_and_a_restart_lands_nothing_twice()
    {
        using var engine = new Engine();
        var ids = Enumerable.Range(0, 600).Select(i => $"m{i}").ToList();
        await using (var server = await TenantAnalyticsServer.StartAsync(engine))
        {
            var writer = server.Token("meta", TokenRole.Writer);
            foreach (var chunk in ids.Chunk(200))
            {
                using var response = await server.PostAsync(writer, new EcommerceEvents(new Random(chunk.Length)).Batch("meta", chunk, new DateTime(2025, 11, 8, 12, 0, 0, DateTimeKind.Utc)));
                ((int)response.StatusCode).ShouldBe(202);
            }

            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", ids.Count)).ShouldBe(ids.Count);
        }

        var items = engine.Count("SELECT count(*) FROM analytics.event_items");
        var parquet = ParquetFiles(engine.DataRoot);
        parquet.ShouldNotBeEmpty();
        SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(engine.DataRoot, "meta.db*")) { File.Delete(file); }

        foreach (var args in new[] { new[] { "run", "tenant-analytics", "--once" }, ["query", "SELECT 1"], ["tokens", "list"] })
        {
            var refused = await SluiceProcess.RunAsync(engine.DataRoot, args);
            refused.Code.ShouldBe(1, refused.Err);
            var line = OneLine(refused.Err);
            line.ShouldContain(Path.Combine(engine.DataRoot, "meta.db"));
            line.ShouldContain("is missing");
            line.ShouldContain($"sluice recover --data {engine.DataRoot}");
        }

        ParquetFiles(engine.DataRoot).ShouldBe(parquet, "no Parquet file was deleted");
        File.Exists(Path.Combine(engine.DataRoot, "meta.db")).ShouldBeFalse("a refused command creates no store");

        var recover = await SluiceProcess.RunAsync(engine.DataRoot, "recover");
        recover.Code.ShouldBe(0, recover.Err);
        recover.Out.ShouldContain($"analytics.events: {parquet.Count(p => p.Contains("/events/", StringComparison.Ordinal))} file(s), {ids.Count} rows");
        recover.Out.ShouldContain("pipeline:tenant-analytics/ecommerce:sink:lake:analytics: checkpoint set to");
        recover.Out.ShouldContain("NOT recovered");
        var counted = await SluiceProcess.RunAsync(engine.DataRoot, "query", "SELECT count(*) AS n FROM analytics.events", "--format", "csv");
        counted.Out.ShouldBe($"n\n{ids.Count}\n", counted.Err);

        // The landing log still holds every event; the restored checkpoint keeps its replay from landing them again.
        var restart = await SluiceProcess.RunAsync(engine.DataRoot, "run", "tenant-analytics", "--once");
        restart.Code.ShouldBe(0, restart.Err);
        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(ids.Count);
        engine.Count("SELECT count(DISTINCT event_id) FROM analytics.events").ShouldBe(ids.Count);
        engine.Count("SELECT count(*) FROM analytics.event_items").ShouldBe(items);
        parquet.ShouldBeSubsetOf(ParquetFiles(engine.DataRoot));

        var again = await SluiceProcess.RunAsync(engine.DataRoot, "recover");
        again.Code.ShouldBe(1);
        OneLine(again.Err).ShouldContain("is healthy");
    }

    [Fact]
    public async Task Corrupt_meta_db_gives_one_line_naming_path_and_cause_and_exit_1_for_every_command()
    {
        using var data = await VehicleDataAsync();
        var meta = Path.Combine(data.Path, "meta.db");
        var garbage = new byte[64 * 1024];
        new Random(7).NextBytes(garbage);
        File.WriteAllBytes(meta, garbage);
        var parquet = ParquetFiles(data.Path);

        foreach (var args in Commands)
        {
            var result = await SluiceProcess.RunAsync(data.Path, args);
            result.Code.ShouldBe(1, $"{string.Join(' ', args)}: {result.Err}");
            var line = OneLine(result.Err);
            line.ShouldContain(meta);
            line.ShouldContain("not a SQLite database");
            line.ShouldContain("sluice recover");
        }

        ParquetFiles(data.Path).ShouldBe(parquet);

        // recover keeps the damaged file aside and brings the lake back.
        var recover = await SluiceProcess.RunAsync(data.Path, "recover");
        recover.Code.ShouldBe(0, recover.Err);
        recover.Out.ShouldContain("kept it aside as");
        Directory.GetFiles(data.Path, "meta.db.damaged-*").Length.ShouldBe(1);
        (await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) AS n FROM raw_data.vehicle_events", "--format", "csv")).Out.ShouldBe("n\n20\n");
    }

    [Fact]
    public async Task A_folder_in_place_of_meta_db_gives_one_line_and_exit_1()
    {
        using var data = new TempFolder();
        Directory.CreateDirectory(Path.Combine(data.Path, "meta.db"));
        foreach (var args in Commands)
        {
            var result = await SluiceProcess.RunAsync(data.Path, args);
            result.Code.ShouldBe(1, result.Err);
            OneLine(result.Err).ShouldContain("meta.db is a folder, not a file");
        }
    }

    [Fact]
    public async Task A_read_only_data_folder_gives_one_line_and_exit_1_for_every_command()
    {
        using var data = await VehicleDataAsync();
        foreach (var args in Commands)
        {
            // Root ignores file modes, so the folder is made read-only by a bind mount in a mount namespace of this command alone.
            var (code, err) = await ReadOnlyRunAsync(data.Path, args);
            code.ShouldBe(1, $"{string.Join(' ', args)}: {err}");
            var line = OneLine(err);
            line.ShouldContain(Path.Combine(data.Path, "meta.db"));
            line.ShouldContain("cannot be written");
        }
    }

    [Fact]
    public async Task Query_does_not_create_a_data_folder_that_does_not_exist()
    {
        using var parent = new TempFolder();
        var missing = parent.Sub("nothing-here");
        foreach (var args in new[] { new[] { "query", "SELECT 1" }, ["tokens", "list"], ["dlq", "list"], ["job", "history"] })
        {
            using var process = SluiceProcess.StartIn(parent.Path, missing, null, args);
            (await process.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(1);
            OneLine(process.Stderr).ShouldBe($"error: no data folder at {missing}: nothing has run there (pass --data, or set SLUICE_DATA)");
        }

        Directory.Exists(missing).ShouldBeFalse();
    }

    internal static async Task<TempFolder> VehicleDataAsync()
    {
        var data = new TempFolder();
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        VehicleFiles.Write(incoming, "vehicles_events_1.json", VehicleFiles.Events(Enumerable.Range(0, 20).Select(i => ($"V{i % 3}", $"2025-11-0{1 + (i % 3)}T10:{i:D2}:00Z", "idle")).ToArray()));
        var run = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once");
        run.Code.ShouldBe(0, run.Err);
        ParquetFiles(data.Path).ShouldNotBeEmpty();
        return data;
    }

    internal static List<string> ParquetFiles(string root) =>
        Directory.GetFiles(Path.Combine(root, "lake"), "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

    /// <summary>The one line a failed command printed: no stack trace, no second line.</summary>
    internal static string OneLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        lines.Length.ShouldBe(1, stderr);
        lines[0].ShouldNotContain("Exception");
        return lines[0];
    }

    private static async Task<(int Code, string Err)> ReadOnlyRunAsync(string data, string[] args)
    {
        var info = new ProcessStartInfo("unshare") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && shift && exec dotnet \"$@\"", data, "placeholder", TestPaths.CliAssembly })
        {
            info.ArgumentList.Add(a);
        }

        foreach (var a in args.Concat(["--data", data])) { info.ArgumentList.Add(a); }
        info.Environment["SLUICE_RECIPES"] = TestPaths.Recipes;
        using var process = Process.Start(info)!;
        var err = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        await output;
        return (process.ExitCode, await err);
    }
}
