using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Recipes;

namespace Sluice.Models;

/// <summary>
/// Runs every model as of each day that needs it, in date order, so that days processed together give the same
/// tables as the same days processed one at a time. A day needs processing when its source files changed since it
/// was last processed (a new day, a later file for the day, an older file arriving late), when it is asked for (the
/// schedule's day, a manual or backfill range), or when a previous processing was cut short. Processing from day D
/// first rewinds the stateful models to before D and then replays, in order, D and every day already processed after
/// it: an older file lands in its correct place in the SCD2 history, and reprocessing a day changes nothing else.
/// Each model run is its own transaction; a day is marked done only after all of its models committed, so a crash
/// at any point is repaired by the next run.
/// </summary>
public sealed class DayProcessor(IEngineServices services, ModelProject project, string scope, Func<IWarehouse> openWarehouse)
{
    private readonly ILogger _log = services.Logging.CreateLogger("Sluice.Models");

    public async Task<JobOutcome> ProcessAsync(IReadOnlyCollection<DateOnly> requested, string trigger, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(requested);
        var snapshot = SourceSnapshot.Capture(services.Lake, project.Sources);
        var warehouse = openWarehouse();
        await using (warehouse.ConfigureAwait(false))
        {
            await warehouse.PrepareAsync(project, snapshot, ct).ConfigureAwait(false);
            var fingerprints = snapshot.DayFingerprints();
            var days = (await warehouse.DaysAsync(ct).ConfigureAwait(false)).ToDictionary(d => d.Day);
            var pending = new SortedSet<DateOnly>(requested);
            foreach (var (day, fingerprint) in fingerprints)
            {
                if (!days.TryGetValue(day, out var seen) || seen.Fingerprint != fingerprint || seen.Status == DayStatus.Redo) { pending.Add(day); }
            }

            foreach (var seen in days.Values.Where(d => d.Status == DayStatus.Redo || (d.Fingerprint != SourceSnapshot.NoFiles && !fingerprints.ContainsKey(d.Day))))
            {
                pending.Add(seen.Day);
            }

            if (pending.Count == 0)
            {
                return new JobOutcome(0, 0, $"nothing to do: {days.Count} day(s) processed, no source file changed");
            }

            var start = pending.Min;
            var applied = new Dictionary<string, DateOnly?>(StringComparer.Ordinal);
            foreach (var m in project.Models.Where(m => m.Stateful))
            {
                applied[m.Name] = await warehouse.AppliedThroughAsync(m, ct).ConfigureAwait(false);
            }

            // A model that cannot undo single days is rebuilt from the first day on.
            if (project.Models.Any(m => m.Stateful && !m.CanRewindByDate && applied[m.Name] >= start))
            {
                start = days.Keys.Concat(pending).Min();
            }

            var replay = new SortedSet<DateOnly>(pending.Where(d => d >= start).Concat(days.Keys.Where(d => d >= start)));
            ModelsLog.Processing(_log, scope, replay.Count, replay.Min, replay.Max, warehouse.Engine, start);
            // Rewinds and replays are published together at the end: a model failing after the rewind hides nothing.
            await warehouse.BeginProcessingAsync(ct).ConfigureAwait(false);
            await warehouse.SaveDaysAsync(replay.Select(d => new DayRecord(d, days.TryGetValue(d, out var r) ? r.Fingerprint : SourceSnapshot.NoFiles, DayStatus.Redo)).ToList(), ct).ConfigureAwait(false);
            foreach (var m in project.Models.Reverse().Where(m => m.Stateful && applied[m.Name] >= start))
            {
                await warehouse.RewindAsync(project, m, start, ct).ConfigureAwait(false);
                ModelsLog.Rewound(_log, m.Name, start);
            }

            var runner = new ModelRunner(services, scope, trigger);
            long rowsIn = 0, rowsOut = 0;
            var done = 0;
            progress?.Report(new JobProgress(0, replay.Count, "days"));
            foreach (var day in replay)
            {
                foreach (var model in project.Models)
                {
                    var result = await runner.RunAsync(warehouse, project, model, day, ct).ConfigureAwait(false);
                    rowsIn += result.RowsIn;
                    rowsOut += result.RowsOut;
                }

                await warehouse.SaveDaysAsync([new DayRecord(day, fingerprints.GetValueOrDefault(day, SourceSnapshot.NoFiles), DayStatus.Done)], ct).ConfigureAwait(false);
                progress?.Report(new JobProgress(++done, replay.Count, day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)));
            }

            await warehouse.CommitProcessingAsync(ct).ConfigureAwait(false);
            var replayed = replay.Count(d => days.ContainsKey(d) && !pending.Contains(d));
            return new JobOutcome(rowsIn, rowsOut,
                $"ran {project.Models.Count} models as of {replay.Count} day(s) {replay.Min:yyyy-MM-dd}..{replay.Max:yyyy-MM-dd} on {warehouse.Engine}" +
                (replayed > 0 ? $" ({replayed} already processed day(s) replayed after an earlier one changed)" : ""));
        }
    }

    /// <summary>
    /// Runs only the given models as of one day (<c>models run --select</c>), recorded like the others. A stateful model
    /// already run as of a later day is refused: that would rewrite its history out of order (a backfill does it right).
    /// </summary>
    public async Task<JobOutcome> RunSelectedAsync(IReadOnlyList<ModelDefinition> models, DateOnly asOf, string trigger, string backfillHint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(models);
        var snapshot = SourceSnapshot.Capture(services.Lake, project.Sources);
        var warehouse = openWarehouse();
        await using (warehouse.ConfigureAwait(false))
        {
            await warehouse.PrepareAsync(project, snapshot, ct).ConfigureAwait(false);
            foreach (var m in models.Where(m => m.Stateful))
            {
                if (await warehouse.AppliedThroughAsync(m, ct).ConfigureAwait(false) is { } applied && applied > asOf)
                {
                    throw new SluiceException($"{m.Name} already ran as of {applied:yyyy-MM-dd}, after {asOf:yyyy-MM-dd}; running it as of an earlier day alone would put its history out of order. Reprocess the range instead: {backfillHint}");
                }
            }

            var runner = new ModelRunner(services, scope, trigger);
            long rowsIn = 0, rowsOut = 0;
            await warehouse.BeginProcessingAsync(ct).ConfigureAwait(false);
            foreach (var m in models)
            {
                if (m.Stateful && await warehouse.AppliedThroughAsync(m, ct).ConfigureAwait(false) == asOf)
                {
                    if (!m.CanRewindByDate)
                    {
                        throw new SluiceException($"{m.Name} already ran as of {asOf:yyyy-MM-dd} and cannot undo a single day (it is rebuilt from its first day); reprocess the range instead: {backfillHint}");
                    }

                    await warehouse.RewindAsync(project, m, asOf, ct).ConfigureAwait(false);
                }

                var r = await runner.RunAsync(warehouse, project, m, asOf, ct).ConfigureAwait(false);
                rowsIn += r.RowsIn;
                rowsOut += r.RowsOut;
            }

            await warehouse.CommitProcessingAsync(ct).ConfigureAwait(false);
            return new JobOutcome(rowsIn, rowsOut, $"ran {string.Join(", ", models.Select(m => m.Name))} as of {asOf:yyyy-MM-dd} on {warehouse.Engine}");
        }
    }

    /// <summary>
    /// <c>models build</c>: each selected model run as of one day (as <see cref="RunSelectedAsync"/> does) and then its
    /// tests, in dependency order; a model reading one whose run or tests failed is skipped. The outcome per model.
    /// </summary>
    public async Task<IReadOnlyList<ModelBuildOutcome>> BuildAsync(IReadOnlyList<ModelDefinition> models, DateOnly asOf, string trigger, string backfillHint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(models);
        var outcomes = new List<ModelBuildOutcome>();
        var broken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in models)
        {
            if (m.Dependencies.FirstOrDefault(broken.Contains) is { } upstream)
            {
                broken.Add(m.Name);
                outcomes.Add(new ModelBuildOutcome(m, null, [], $"skipped: {upstream} failed"));
                continue;
            }

            try
            {
                var run = await RunSelectedAsync([m], asOf, trigger, backfillHint, ct).ConfigureAwait(false);
                var tests = await TestAsync([m], ct).ConfigureAwait(false);
                if (tests.Any(t => !t.Passed)) { broken.Add(m.Name); }
                outcomes.Add(new ModelBuildOutcome(m, run, tests, null));
            }
            catch (SluiceException e)
            {
                broken.Add(m.Name);
                outcomes.Add(new ModelBuildOutcome(m, null, [], e.Message));
            }
        }

        return outcomes;
    }

    /// <summary>Runs the declared tests of the given models (all when empty) on the warehouse as it is.</summary>
    public async Task<IReadOnlyList<ModelTestOutcome>> TestAsync(IReadOnlyList<ModelDefinition> models, CancellationToken ct)
    {
        var snapshot = SourceSnapshot.Capture(services.Lake, project.Sources);
        var warehouse = openWarehouse();
        await using (warehouse.ConfigureAwait(false))
        {
            await warehouse.PrepareAsync(project, snapshot, ct).ConfigureAwait(false);
            var outcomes = await ModelTester.RunAsync(warehouse, models, ct).ConfigureAwait(false);
            new ModelTestResults(services.Metadata, services.Time).Record(scope, outcomes);
            return outcomes;
        }
    }
}

/// <summary>One model of a <c>models build</c>: its run, its tests, or why it failed or was skipped.</summary>
public sealed record ModelBuildOutcome(ModelDefinition Model, JobOutcome? Run, IReadOnlyList<ModelTestOutcome> Tests, string? Error)
{
    public bool Passed => Error is null && Tests.All(t => t.Passed);
}
