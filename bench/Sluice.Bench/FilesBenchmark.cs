using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Files;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;
using Sluice.Jobs.DailySummary;
using Sluice.Lake;
using Sluice.Hosting;

namespace Sluice.Bench;

public sealed record FilesBenchmarkReport(
    string Machine, long Events, double Megabytes, int Files,
    double SluiceSeconds, double DuckDbSeconds, double SluiceCpuSeconds, double DuckDbCpuSeconds, double SluicePeakRssMiB,
    double SummarySeconds, double SummaryReferenceSeconds, long SummaryRows, long ReferenceSummaryRows, IReadOnlyList<double> RoundRatios)
{
    public double IngestRatio => DuckDbSeconds / SluiceSeconds;

    public double SummaryRatio => SummarySeconds / SummaryReferenceSeconds;

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench files ({DateTime.UtcNow:yyyy-MM-dd})");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Input: {Events:N0} vehicle events in {Files} JSON files, {Megabytes:N1} MB");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Ingest: {RoundRatios.Count} rounds, each Sluice then DuckDB on fresh folders; the table shows the median round (ratios in round order: {string.Join(", ", RoundRatios.Select(r => r.ToString("N2", CultureInfo.InvariantCulture)))}); peak RSS is the highest of all rounds.");
        sb.AppendLine();
        sb.AppendLine("| measure | Sluice | reference (DuckDB, same run) | ratio | target |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| ingest JSON -> partitioned Parquet | {SluiceSeconds:N2} s ({Events / SluiceSeconds:N0} events/s, {Megabytes / SluiceSeconds:N1} MB/s) | {DuckDbSeconds:N2} s ({Events / DuckDbSeconds:N0} events/s) | {IngestRatio:N2}x of DuckDB's throughput | >= 0.7x |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| CPU time of the ingest (all threads) | {SluiceCpuSeconds:N2} s | {DuckDbCpuSeconds:N2} s | {DuckDbCpuSeconds / SluiceCpuSeconds:N2}x | |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| peak RSS during ingest | {SluicePeakRssMiB:N0} MiB | | | < 1024 MiB |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| daily summary over the lake | {SummarySeconds:N2} s ({SummaryRows:N0} rows) | {SummaryReferenceSeconds:N2} s ({ReferenceSummaryRows:N0} rows) | {SummaryRatio:N2}x DuckDB's time | <= 2x |");
        return sb.ToString();
    }
}

/// <summary>
/// <c>sluice bench files</c>: generates vehicle event files, ingests them with Sluice's file source, and in the same run
/// converts the same files with DuckDB's own <c>read_json</c> + <c>COPY ... PARTITION_BY</c>; then times the daily
/// summary against the same aggregation written as plain DuckDB SQL over the same Parquet files.
/// </summary>
public static class FilesBenchmark
{
    public const int EventsPerFile = 10_000;

    /// <param name="progress">A progress reporter per phase (title), or null for none.</param>
    public static async Task<FilesBenchmarkReport> RunAsync(
        string root, int events, int rounds, TextWriter log, CancellationToken ct, Func<string, IProgress<JobProgress>>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        var input = Path.Combine(root, "input");
        Directory.CreateDirectory(input);

        var files = Math.Max(1, events / EventsPerFile);
        await log.WriteLineAsync($"generating {files * (long)EventsPerFile:N0} events in {files} files ...").ConfigureAwait(false);
        var generator = new VehicleFilesGenerator(input, new VehicleFilesGeneratorOptions { Files = 1, EventsPerFile = EventsPerFile, LateRatio = 0.05, Vehicles = 1000, Seed = 42 }, TimeProvider.System);
        var generating = progress?.Invoke("generate");
        for (var i = 0; i < files * 2; i++)
        {
            generator.WriteRound();
            generating?.Report(new JobProgress(i + 1, files * 2, "files"));
        }

        // The generator alternates event and status files; the benchmark is about events.
        foreach (var status in Directory.EnumerateFiles(input, "vehicles_status_*")) { File.Delete(status); }
        var inputFiles = Directory.EnumerateFiles(input, "vehicles_events_*.json").ToList();
        var bytes = inputFiles.Sum(f => new FileInfo(f).Length);
        var total = (long)inputFiles.Count * EventsPerFile;

        // Sluice: the recipe's own file type, through the real source (claim, parse, validate, write, commit, move).
        var recipeFolder = Path.Combine(RecipeLoader.RecipesRoot, "vehicle-files");
        var errors = new ConfigErrors();
        var types = FileTypeCatalog.LoadFolder(Path.Combine(recipeFolder, "filetypes"), errors);
        errors.ThrowIfAny();
        var options = new FilesOptions { Folder = "drop", StableAfter = TimeSpan.Zero, OnceWait = TimeSpan.FromSeconds(10) };
        await WarmUpAsync(root, types, options, log, ct).ConfigureAwait(false);
        // Several rounds, each Sluice then DuckDB on fresh folders, and the median round reported: on a small machine a
        // single pair of runs moves by a fifth with whatever else the machine does in those seconds.
        var measured = new List<(double Sluice, double DuckDb, double SluiceCpu, double DuckDbCpu, double PeakRss, string Data)>();
        var roundsDone = progress?.Invoke("rounds");
        roundsDone?.Report(new JobProgress(0, rounds, "sluice, then duckdb"));
        for (var round = 1; round <= rounds; round++)
        {
            var data = Path.Combine(root, $"sluice-data-{round}");
            var (sluiceSeconds, sluiceCpu, peak) = await IngestWithSluiceAsync(
                data, types, options, inputFiles, total, round, log, progress?.Invoke($"sluice ingest round {round}"), ct).ConfigureAwait(false);
            await log.WriteLineAsync($"duckdb read_json + COPY (round {round}) ...").ConfigureAwait(false);
            var duckOutput = Path.Combine(root, $"duckdb-out-{round}");
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var duckSeconds = DuckDbIngest(input, duckOutput, total);
            var duckCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            Directory.Delete(duckOutput, recursive: true);
            await log.WriteLineAsync($"  round {round}: sluice {sluiceSeconds:N2} s, duckdb {duckSeconds:N2} s, {duckSeconds / sluiceSeconds:N2}x").ConfigureAwait(false);
            if (measured.Count > 0) { Directory.Delete(measured[^1].Data, recursive: true); }
            measured.Add((sluiceSeconds, duckSeconds, sluiceCpu, duckCpu, peak, data));
            roundsDone?.Report(new JobProgress(round, rounds, $"round {round}"));
        }

        var median = measured.OrderBy(m => m.DuckDb / m.Sluice).ElementAt(measured.Count / 2);
        using var services = new EngineServices(new DataDirectory(measured[^1].Data), TimeProvider.System, NullLoggerFactory.Instance);
        await log.WriteLineAsync("daily summary ...").ConfigureAwait(false);
        var job = new DailySummaryJob(services, "bench", new DailySummaryOptions
        {
            Source = "raw_data.vehicle_events", GroupBy = ["vehicle_id"], Time = "event_time",
            Latest = [("last_event_time", "event_time"), ("last_event_type", "event_type")], Target = "reports.daily_summary",
        });
        var sw = Stopwatch.StartNew();
        var outcome = await job.RunAsync(new JobRequest(DateTimeOffset.UtcNow), ct).ConfigureAwait(false);
        sw.Stop();
        var (refSeconds, refRows) = DuckDbSummary(services, Path.Combine(root, "duckdb-summary"));
        return new FilesBenchmarkReport(
            MachineInfo.Describe(), total, bytes / 1e6, inputFiles.Count, median.Sluice, median.DuckDb, median.SluiceCpu, median.DuckDbCpu,
            measured.Max(m => m.PeakRss), sw.Elapsed.TotalSeconds, refSeconds, outcome.RowsOut, refRows, measured.Select(m => m.DuckDb / m.Sluice).ToList());
    }

    /// <summary>The recipe's own file type through the real source (claim, parse, validate, write, commit, move).</summary>
    private static async Task<(double Seconds, double CpuSeconds, double PeakRssMiB)> IngestWithSluiceAsync(
        string data, IReadOnlyList<FileType> types, FilesOptions options, List<string> inputFiles, long total, int round, TextWriter log, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        using var services = new EngineServices(new DataDirectory(data), TimeProvider.System, NullLoggerFactory.Instance);
        var source = new FilesSource(services, "bench", options, types);
        await using (source.ConfigureAwait(false))
        {
            foreach (var f in inputFiles) { File.Copy(f, Path.Combine(source.Drop.Incoming, Path.GetFileName(f))); }
            GC.Collect();
            MachineInfo.ResetPeakRss();
            await log.WriteLineAsync($"sluice ingest (round {round}) ...").ConfigureAwait(false);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            // One pass: the source looks twice (stability) and then claims and ingests everything.
            await DropProgress.WatchAsync(source, progress, source.RunOnceAsync(ct)).ConfigureAwait(false);
            sw.Stop();
            var seconds = sw.Elapsed.TotalSeconds;
            var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            var peak = MachineInfo.PeakRssMiB();
            var landed = services.Query.Query("SELECT count(*) FROM raw_data.vehicle_events").Rows[0][0];
            if (Convert.ToInt64(landed, CultureInfo.InvariantCulture) != total)
            {
                throw new SluiceException($"bench: Sluice landed {landed} events, expected {total}.");
            }

            return (seconds, cpuSeconds, peak);
        }
    }

    /// <summary>
    /// Ingests a few files first so the measured run is of compiled code, as in a running instance; the reference is
    /// native code and needs no warm-up.
    /// </summary>
    private static async Task WarmUpAsync(string root, IReadOnlyList<FileType> types, FilesOptions options, TextWriter log, CancellationToken ct)
    {
        await log.WriteLineAsync("warm-up ...").ConfigureAwait(false);
        using var services = new EngineServices(new DataDirectory(Path.Combine(root, "warmup")), TimeProvider.System, NullLoggerFactory.Instance);
        var source = new FilesSource(services, "warmup", options, types);
        await using (source.ConfigureAwait(false))
        {
            var generator = new VehicleFilesGenerator(source.Drop.Incoming, new VehicleFilesGeneratorOptions { Files = 8, EventsPerFile = EventsPerFile, Seed = 1 }, TimeProvider.System);
            generator.WriteRound();
            await source.RunOnceAsync(ct).ConfigureAwait(false);
        }
    }

    private static double DuckDbIngest(string input, string output, long expected)
    {
        using var db = DuckDb.OpenMemory(Path.Combine(output, "_tmp"));
        var sw = Stopwatch.StartNew();
        var glob = LakeQueryEngine.Literal(Path.Combine(input, "vehicles_events_*.json"));
        LakeQueryEngine.Exec(db,
            "COPY (SELECT e.vehicle_id, e.event_time, e.event_source, e.event_type, CAST(e.event_time AS DATE) AS date " +
            $"FROM (SELECT unnest(vehicles_events) AS e FROM read_json({glob}, format = 'auto', maximum_object_size = 67108864, " +
            "columns = {vehicles_events: 'STRUCT(vehicle_id VARCHAR, event_time TIMESTAMPTZ, event_source VARCHAR, event_type VARCHAR)[]'}))) " +
            $"TO {LakeQueryEngine.Literal(Path.Combine(output, "vehicle_events"))} (FORMAT parquet, PARTITION_BY (date))");
        sw.Stop();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM read_parquet({LakeQueryEngine.Literal(Path.Combine(output, "vehicle_events", "**", "*.parquet"))})";
        var count = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        if (count != expected)
        {
            throw new SluiceException($"bench: DuckDB reference wrote {count} events, expected {expected}.");
        }

        return sw.Elapsed.TotalSeconds;
    }

    private static (double Seconds, long Rows) DuckDbSummary(EngineServices services, string output)
    {
        var files = services.Lake.Files("raw_data.vehicle_events");
        using var db = DuckDb.OpenMemory(Path.Combine(output, "_tmp"));
        var list = string.Join(", ", files.Select(LakeQueryEngine.Literal));
        var sw = Stopwatch.StartNew();
        LakeQueryEngine.Exec(db,
            "COPY (SELECT vehicle_id, CAST(event_time AS DATE) AS day, max(event_time) AS last_event_time, arg_max(event_type, event_time) AS last_event_type " +
            $"FROM read_parquet([{list}]) GROUP BY ALL) TO {LakeQueryEngine.Literal(Path.Combine(output, "daily_summary"))} (FORMAT parquet, PARTITION_BY (day))");
        sw.Stop();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM read_parquet({LakeQueryEngine.Literal(Path.Combine(output, "daily_summary", "**", "*.parquet"))})";
        return (sw.Elapsed.TotalSeconds, Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture));
    }
}
