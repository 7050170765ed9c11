using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;
using static Sluice.Lake.LakeQueryEngine;

namespace Sluice.Jobs.DailySummary;

public sealed class DailySummaryJobType : IJobType
{
    public string Name => "daily_summary";

    public IJobFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(recipe.Name, DailySummaryOptions.Parse(options));

    /// <summary>The job of a recipe (<see cref="Cluster.ClusterJobs"/> runs it in cluster mode: its state and output are in the shared store and lake).</summary>
    internal sealed class Factory(string recipe, DailySummaryOptions options) : IJobFactory, IWritesLakeTables, IReadsDataFolder
    {
        public IEnumerable<string> LakeTables => [options.Target];

        public IJob Create(IEngineServices services) => new DailySummaryJob(services, recipe, options);
    }
}

/// <summary>
/// Per key and event day, the day's latest record. Which days are computed: on the first run every day in the source;
/// afterwards the look-back window before the as-of date plus every day whose source partition received files since
/// the last run (so events that arrive days late still reach their day, without a manual backfill); a backfill names
/// its range. A day whose source files are exactly those it was last computed from is left as it is, so a rerun with
/// no new data rewrites nothing. Recomputed days replace their partitions atomically, with the job's checkpoints.
/// On a cluster the lake and the checkpoints (day fingerprints, manifest watermark) are the shared ones, and each commit
/// is made under the run's lease (<see cref="JobFence"/>): a run whose lease another run took over commits nothing.
/// </summary>
public sealed class DailySummaryJob(IEngineServices services, string recipe, DailySummaryOptions options) : IJob
{
    /// <summary>
    /// Reached before each commit of a run, its output staged and its lease held (<see cref="CrashPoint"/>), as
    /// <c>daily_summary.committing.&lt;trigger&gt;</c> (<c>schedule</c>, <c>rerun</c>, <c>after_load</c>, <c>manual</c>...):
    /// the trigger lets a test kill a scheduled slot's run and not the after-load runs around it.
    /// </summary>
    public const string CommittingCrashPoint = "daily_summary.committing";

    private const int DaysPerQuery = 31;

    private string CheckpointPrefix => $"job:{recipe}/{options.Target}";

    public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var source = services.Lake.Table(options.Source);
        if (source is null)
        {
            return new JobOutcome(0, 0, $"nothing to summarise: {options.Source} has no data yet");
        }

        var target = TargetTable(source);
        if (services.Lake.FileEntries(source.QualifiedName).Count == 0 && request.From is null)
        {
            return new JobOutcome(0, 0, $"nothing to summarise: {options.Source} has no data yet");
        }

        services.Lake.Register(target);
        var checkpoints = new CheckpointStore(services.Metadata, services.Time);
        var watermark = services.Lake.MaxManifestId();
        var files = services.Lake.FileEntries(source.QualifiedName, watermark);
        var byDay = files.GroupBy(f => f.Partition).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var force = request.From is not null;
        var candidates = CandidateDays(request, byDay.Keys, checkpoints);
        var todo = candidates
            .Where(d => force || (checkpoints.Get($"{CheckpointPrefix}:day:{d}") ?? Fingerprint(null)) != Fingerprint(byDay.GetValueOrDefault(d)))
            .Order(StringComparer.Ordinal)
            .ToList();

        long rowsIn = 0, rowsOut = 0;
        var done = 0;
        request.Progress?.Report(new JobProgress(0, todo.Count, "days"));
        foreach (var chunk in todo.Chunk(force ? 1 : DaysPerQuery))
        {
            ct.ThrowIfCancellationRequested();
            var inputs = chunk.SelectMany(d => byDay.GetValueOrDefault(d) ?? []).ToList();
            rowsIn += inputs.Sum(f => f.Rows);
            using var stager = services.Lake.BeginStaging($"{recipe}-{target.Name}");
            if (inputs.Count > 0)
            {
                rowsOut += await Task.Run(() => Compute(source, target, inputs, stager), ct).ConfigureAwait(false);
            }

            var last = done + chunk.Length == todo.Count;
            // On a cluster the run's lease is checked and held through the commit (fencing): a run taken over writes nothing.
            using (JobFence.Hold())
            {
                CrashPoint.Reach($"{CommittingCrashPoint}.{request.Trigger}");
                services.Lake.Commit(
                    stager,
                    (c, tx) =>
                    {
                        foreach (var day in chunk)
                        {
                            checkpoints.Set($"{CheckpointPrefix}:day:{day}", Fingerprint(byDay.GetValueOrDefault(day)), c, tx);
                        }

                        if (last) { checkpoints.Set($"{CheckpointPrefix}:manifest", watermark.ToString(CultureInfo.InvariantCulture), c, tx); }
                    },
                    chunk.Select(d => (target, d)).ToList());
            }

            done += chunk.Length;
            request.Progress?.Report(new JobProgress(done, todo.Count, chunk[^1]));
        }

        if (todo.Count == 0)
        {
            using var fence = JobFence.Hold();
            CrashPoint.Reach($"{CommittingCrashPoint}.{request.Trigger}");
            checkpoints.Set($"{CheckpointPrefix}:manifest", watermark.ToString(CultureInfo.InvariantCulture));
        }

        var skipped = candidates.Count - todo.Count;
        var message = todo.Count == 0
            ? $"nothing changed ({candidates.Count} days checked)"
            : $"recomputed {todo.Count} day{(todo.Count == 1 ? "" : "s")} ({todo[0]}..{todo[^1]}), {rowsOut} summary rows from {rowsIn} events" +
              (skipped > 0 ? $"; {skipped} unchanged" : "");
        return new JobOutcome(rowsIn, rowsOut, message);
    }

    private HashSet<string> CandidateDays(JobRequest request, IEnumerable<string> sourceDays, CheckpointStore checkpoints)
    {
        var days = new HashSet<string>(StringComparer.Ordinal);
        if (request.From is { } from)
        {
            var to = request.To ?? from;
            for (var d = from; d <= to; d = d.AddDays(1)) { days.Add(Day(d)); }
            return days;
        }

        var last = checkpoints.Get($"{CheckpointPrefix}:manifest");
        if (last is null)
        {
            days.UnionWith(sourceDays);
            return days;
        }

        var asOf = DateOnly.FromDateTime(request.AsOf.UtcDateTime);
        for (var i = 1; i <= options.LookbackDays; i++) { days.Add(Day(asOf.AddDays(-i))); }
        var (changed, _) = services.Lake.PartitionsChangedSince(options.Source, long.Parse(last, CultureInfo.InvariantCulture));
        days.UnionWith(changed);
        return days;
    }

    private long Compute(LakeTable source, LakeTable target, List<LakeFileEntry> inputs, LakeStager stager)
    {
        using var db = DuckDb.OpenMemory(Path.Combine(services.Data.Root, "tmp", "duckdb"));
        var keys = string.Join(", ", options.GroupBy.Select(Quote));
        var order = "row(" + string.Join(", ", new[] { options.Time }.Concat(options.Latest.Select(l => l.Source)).Distinct(StringComparer.Ordinal).Select(Quote)) + ")";
        var latest = string.Join(", ", options.Latest.Select(l => $"arg_max({Quote(l.Source)}, {order}) AS {Quote(l.Output)}"));
        var day = Quote(options.DayColumn);
        var list = string.Join(", ", inputs.Select(f => Literal(f.Path)));
        var output = Path.Combine(stager.Folder, "out");
        Exec(db,
            $"COPY (SELECT {keys}, {UtcDate(Quote(options.Time))} AS {day}, {latest} " +
            $"FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true) GROUP BY ALL) " +
            $"TO {Literal(output)} (FORMAT parquet, PARTITION_BY ({day}), OVERWRITE_OR_IGNORE)");

        if (!Directory.Exists(output))
        {
            return 0;
        }

        long total = 0;
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT filename, count(*) FROM read_parquet({Literal(Path.Combine(output, "**", "*.parquet"))}, filename = true, hive_partitioning = false) GROUP BY filename";
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var path = reader.GetString(0);
            var rows = reader.GetInt64(1);
            var folder = Path.GetFileName(Path.GetDirectoryName(path)!);
            stager.AddWritten(target, folder[(folder.IndexOf('=', StringComparison.Ordinal) + 1)..], path, rows);
            total += rows;
        }

        return total;
    }

    /// <summary>
    /// The UTC date of a TIMESTAMPTZ by arithmetic on its epoch: the same as a cast under the session's UTC time zone,
    /// without DuckDB's per-row ICU calendar work (which was a third of the job's time).
    /// </summary>
    internal static string UtcDate(string column) => $"(DATE '1970-01-01' + CAST(floor(epoch_us({column}) / 86400000000) AS INTEGER))";

    private LakeTable TargetTable(LakeTable source)
    {
        FieldSpec Column(string name, string output)
        {
            var spec = source.Columns.FirstOrDefault(c => c.Name == name)
                ?? throw new SluiceException($"daily_summary {recipe}: column '{name}' is not in {source.QualifiedName} (columns: {string.Join(", ", source.Columns.Select(c => c.Name))})");
            return new FieldSpec(output, spec.Type, false);
        }

        var columns = options.GroupBy.Select(k => Column(k, k)).Concat(options.Latest.Select(l => Column(l.Source, l.Output))).ToList();
        var time = Column(options.Time, options.Time);
        if (time.Type != FieldType.Timestamp)
        {
            throw new SluiceException($"daily_summary {recipe}: time column '{options.Time}' of {source.QualifiedName} is {time.Type.Name()}, not a timestamp");
        }

        var dot = options.Target.IndexOf('.', StringComparison.Ordinal);
        return new LakeTable(options.Target[..dot], options.Target[(dot + 1)..], options.DayColumn, FieldType.Date, columns);
    }

    private static string Fingerprint(List<LakeFileEntry>? files)
    {
        if (files is null || files.Count == 0)
        {
            return "empty";
        }

        var ids = string.Join(",", files.Select(f => f.Id).Order());
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ids)))[..32];
    }

    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
