using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Recipes;

namespace Sluice.Models;

/// <summary>
/// Runs each model as of each day that needs it, in date order, so that days processed together give the same tables
/// as the same days processed one at a time. A model needs a day when it never ran as of it, when its definition or
/// what it reads as of the day changed since (a later or late file, an input model whose content of the day changed:
/// see <see cref="ModelDayLedger"/>), or when the day is forced (a backfill or manual range, the look-back). Days
/// between the first processed day and the asked as-of day that never ran (a missed schedule) are processed too.
/// A partition or clean model recomputes only its stale days; any other model (snapshots, merges, tables) builds on
/// its earlier days, so from its first stale day D it is rewound to before D and replays D and every later day.
/// Everything a processing does is published at once with the day records, so a crash at any point leaves all as it
/// was and the next run redoes it.
/// </summary>
public sealed class DayProcessor(IEngineServices services, ModelProject project, string scope, Func<IWarehouse> openWarehouse)
{
    /// <summary>
    /// Reached before a processing's commit, its output staged and (on a cluster) its run's lease held
    /// (<see cref="CrashPoint"/>, <c>models.committing.&lt;trigger&gt;</c>), as <c>daily_summary.committing</c>.
    /// </summary>
    public const string CommittingCrashPoint = "models.committing";

    private readonly ILogger _log = services.Logging.CreateLogger("Sluice.Models");

    /// <summary>Processes the stale days and forces <paramref name="requested"/> (a backfill).</summary>
    public Task<JobOutcome> ProcessAsync(IReadOnlyCollection<DateOnly> requested, string trigger, IProgress<JobProgress>? progress, CancellationToken ct) =>
        ProcessAsync(new DayRequest(requested, null), trigger, progress, ct);

    public async Task<JobOutcome> ProcessAsync(DayRequest request, string trigger, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var snapshot = SourceSnapshot.Capture(services.Lake, project.Sources);
        var rebuild = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var warehouse = openWarehouse();
            await using (warehouse.ConfigureAwait(false))
            {
                var (outcome, restart) = await ProcessOnceAsync(warehouse, snapshot, request, rebuild, trigger, progress, ct).ConfigureAwait(false);
                if (restart is null) { return outcome!; }

                // A model that cannot undo single days turned out stale after its first day: start over (nothing was
                // published) with it rebuilt from the first day.
                rebuild.Add(restart);
                ModelsLog.Rebuilding(_log, restart);
            }
        }
    }

    private async Task<(JobOutcome? Outcome, string? Restart)> ProcessOnceAsync(
        IWarehouse warehouse, SourceSnapshot snapshot, DayRequest request, HashSet<string> rebuild, string trigger, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        await warehouse.PrepareAsync(project, snapshot, ct).ConfigureAwait(false);
        var records = (await warehouse.DaysAsync(ct).ConfigureAwait(false)).ToDictionary(d => d.Day);
        var ledger = new ModelDayLedger(project, snapshot, records.Values);
        var forced = new HashSet<DateOnly>(request.Forced.Concat(records.Values.Where(r => r.Status == DayStatus.Redo).Select(r => r.Day)));
        var days = new SortedSet<DateOnly>(records.Keys.Concat(ledger.SourceDays).Concat(forced));
        if (request.AsOf is { } asOf)
        {
            // Every day from the first one up to the as-of day: days a missed schedule never ran are found here.
            for (var d = days.Count > 0 && days.Min < asOf ? days.Min : asOf; d <= asOf; d = d.AddDays(1)) { days.Add(d); }
        }

        var applied = new Dictionary<string, DateOnly?>(StringComparer.Ordinal);
        foreach (var m in project.Models.Where(m => m.Stateful))
        {
            applied[m.Name] = await warehouse.AppliedThroughAsync(m, ct).ConfigureAwait(false);
        }

        var fingerprints = snapshot.DayFingerprints();
        var replaying = new HashSet<string>(StringComparer.Ordinal);
        var runner = new ModelRunner(services, scope, trigger);
        var began = false;
        long rowsIn = 0, rowsOut = 0;
        var runs = 0;
        var ranDays = new SortedSet<DateOnly>();
        var done = 0;
        progress?.Report(new JobProgress(0, days.Count, "days"));
        foreach (var day in days)
        {
            foreach (var model in project.Models)
            {
                var input = ledger.Input(model, day);
                var stale = forced.Contains(day) || replaying.Contains(model.Name) || rebuild.Contains(model.Name) || ledger.Recorded(model, day)?.Input != input;
                if (!stale) { continue; }
                if (!began)
                {
                    await warehouse.BeginProcessingAsync(ct).ConfigureAwait(false);
                    began = true;
                }

                if (model.PartitionColumn is null && replaying.Add(model.Name) && model.Stateful && applied[model.Name] >= day)
                {
                    if (!model.CanRewindByDate && day > days.Min && !rebuild.Contains(model.Name)) { return (null, model.Name); }
                    await warehouse.RewindAsync(project, model, day, ct).ConfigureAwait(false);
                    ModelsLog.Rewound(_log, model.Name, day);
                }

                // What it reads must be as of the day: a model building on its earlier days that already holds later
                // days (and whose content changed after this one) is rewound to the end of this day and replays the rest.
                foreach (var upstream in StatefulInputs(model).Where(i => !replaying.Contains(i.Name) && applied[i.Name] > day && ledger.ChangedAfter(i, day)))
                {
                    if (!upstream.CanRewindByDate) { return (null, upstream.Name); }
                    await warehouse.RewindAsync(project, upstream, day.AddDays(1), ct).ConfigureAwait(false);
                    ModelsLog.Rewound(_log, upstream.Name, day.AddDays(1));
                    applied[upstream.Name] = day;
                    replaying.Add(upstream.Name);
                }

                var result = await RunRecordedAsync(runner, warehouse, ledger, model, day, input, ct).ConfigureAwait(false);
                rowsIn += result.RowsIn;
                rowsOut += result.RowsOut;
                runs++;
                ranDays.Add(day);
            }

            progress?.Report(new JobProgress(++done, days.Count, day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)));
        }

        if (!began)
        {
            return (new JobOutcome(0, 0, $"nothing to do: {days.Count} day(s) checked, no model's inputs or definition changed"), null);
        }

        await warehouse.SaveDaysAsync(ledger.ChangedDays(fingerprints), ct).ConfigureAwait(false);
        // On a cluster the run's lease is checked and held through the commit (fencing): a run taken over writes nothing.
        using (Jobs.JobFence.Hold())
        {
            CrashPoint.Reach($"{CommittingCrashPoint}.{trigger}");
            await warehouse.CommitProcessingAsync(ct).ConfigureAwait(false);
        }

        ModelsLog.Processed(_log, scope, runs, ranDays.Count, ranDays.Min, ranDays.Max, warehouse.Engine);
        var again = ranDays.Count(records.ContainsKey);
        return (new JobOutcome(rowsIn, rowsOut,
            $"ran {runs} model-day(s) as of {ranDays.Count} day(s) {ranDays.Min:yyyy-MM-dd}..{ranDays.Max:yyyy-MM-dd} on {warehouse.Engine}, " +
            $"{project.Models.Count * days.Count - runs} model-day(s) unchanged" +
            (again > 0 ? $" ({again} already processed day(s) recomputed)" : "")), null);
    }

    /// <summary>Runs one model as of one day and records in the ledger what it read and what it produced (what its readers' fingerprints see).</summary>
    private async Task<ModelRunResult> RunRecordedAsync(ModelRunner runner, IWarehouse warehouse, ModelDayLedger ledger, ModelDefinition model, DateOnly day, string input, CancellationToken ct)
    {
        var result = await runner.RunAsync(warehouse, project, model, day, ct).ConfigureAwait(false);
        var output = model.Kind == ModelKind.View ? input
            : ledger.IsRead(model) ? await warehouse.ContentAsync(project, model, day, ct).ConfigureAwait(false) : ModelDayLedger.Unread;
        ledger.Ran(model, day, input, output);
        return result;
    }

    /// <summary>The models building on their earlier days (snapshots, keyed merges) that a model reads, directly or through views.</summary>
    private IEnumerable<ModelDefinition> StatefulInputs(ModelDefinition model)
    {
        var byName = project.Models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>(model.Dependencies);
        while (queue.TryDequeue(out var name))
        {
            if (!seen.Add(name) || !byName.TryGetValue(name, out var input)) { continue; }
            if (input.Kind == ModelKind.View) { foreach (var d in input.Dependencies) { queue.Enqueue(d); } }
            else if (input.Stateful && input.PartitionColumn is null) { yield return input; }
        }
    }

    /// <summary>
    /// Runs only the given models as of one day (<c>models run --select</c>), recorded like the others: in the run log,
    /// and in the day's fingerprints as a full run records them. A stateful model
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
            // Recorded as a full run records them, so a later run neither recomputes these model-days nor misses what
            // they changed for their readers.
            var ledger = new ModelDayLedger(project, snapshot, await warehouse.DaysAsync(ct).ConfigureAwait(false));
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

                var r = await RunRecordedAsync(runner, warehouse, ledger, m, asOf, ledger.Input(m, asOf), ct).ConfigureAwait(false);
                rowsIn += r.RowsIn;
                rowsOut += r.RowsOut;
            }

            await warehouse.SaveDaysAsync(ledger.ChangedDays(snapshot.DayFingerprints()), ct).ConfigureAwait(false);
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

/// <summary>
/// What a processing is asked for besides the stale days: days to recompute whatever their fingerprints say
/// (a backfill or manual range, the look-back), and the as-of day up to which every day must have run (the schedule's
/// or a manual run's day; null after a load, which processes only what its files changed).
/// </summary>
public sealed record DayRequest(IReadOnlyCollection<DateOnly> Forced, DateOnly? AsOf);
