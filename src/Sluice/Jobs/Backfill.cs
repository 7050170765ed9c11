using System.Globalization;
using System.Text;

namespace Sluice.Jobs;

/// <summary>
/// A job recomputed over a range of days, one run per day (each recorded in <c>job_runs</c> with trigger
/// <c>backfill</c>), in the process that runs the recipe: its progress can be watched and it can be cancelled between or
/// during days. A day that fails is counted and the next one goes on; a cancelled day leaves what it replaces as it was
/// (jobs commit atomically), and the message names the days that finished.
/// </summary>
public sealed class Backfill
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    /// <summary>Failed days whose reason the message quotes; the count says how many more there were.</summary>
    private const int ReasonsShown = 3;

    private readonly Lock _lock = new();
    private CancellationTokenSource? _running;
    private bool _cancelled;
    private readonly List<DateOnly> _finished = [];
    private readonly List<(DateOnly Day, string Reason)> _failures = [];
    private string _state = Running;
    private string _message = "";
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Backfill(string id, string recipe, string job, DateOnly from, DateOnly to)
    {
        if (to < from) { throw new ArgumentOutOfRangeException(nameof(to), "the last day is before the first"); }
        Id = id;
        Recipe = recipe;
        Job = job;
        From = from;
        To = to;
        Total = to.DayNumber - from.DayNumber + 1;
    }

    public string Id { get; }

    public string Recipe { get; }

    public string Job { get; }

    public DateOnly From { get; }

    public DateOnly To { get; }

    public int Total { get; }

    /// <summary>Completes when the backfill has ended, whatever its state.</summary>
    public Task Ended => _ended.Task;

    public bool Finished
    {
        get { lock (_lock) { return _state != Running; } }
    }

    /// <summary>Asks the backfill to stop: the day in progress is cancelled and no further day starts.</summary>
    public void Cancel()
    {
        lock (_lock)
        {
            _cancelled = true;
            _running?.Cancel();
        }
    }

    /// <summary>Runs every day in order with <paramref name="runDay"/>; ends when all ran, or on <see cref="Cancel"/> or <paramref name="stopping"/>.</summary>
    public async Task RunAsync(Func<DateOnly, CancellationToken, Task> runDay, CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(runDay);
        var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        lock (_lock)
        {
            _running = linked;
            if (_cancelled) { linked.Cancel(); }
        }

        for (var day = From; day <= To; day = day.AddDays(1))
        {
            if (linked.IsCancellationRequested) { break; }
            try
            {
                await runDay(day, linked.Token).ConfigureAwait(false);
                lock (_lock) { _finished.Add(day); }
            }
            catch (OperationCanceledException) when (linked.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                lock (_lock) { _failures.Add((day, e.Message)); }
            }
        }

        lock (_lock)
        {
            _running = null;
            linked.Dispose();
            var done = Describe(_finished);
            if (_cancelled || stopping.IsCancellationRequested)
            {
                _state = Cancelled;
                var why = _cancelled ? "cancelled" : "stopped with the process";
                _message = $"{why} after {_finished.Count + _failures.Count} of {Total} day(s); finished: {(done.Length == 0 ? "none" : done)}{FailureText()}";
            }
            else if (_failures.Count > 0)
            {
                _state = Failed;
                _message = $"{_failures.Count} of {Total} day(s) failed{FailureText()}";
            }
            else
            {
                _state = Succeeded;
                _message = $"{Total} day(s) recomputed: {done}";
            }
        }

        _ended.TrySetResult();
    }

    public BackfillView View()
    {
        lock (_lock)
        {
            var message = _state == Running ? $"{_finished.Count + _failures.Count} of {Total} day(s) done{FailureText()}" : _message;
            return new BackfillView(Id, Recipe, Job, Day(From), Day(To), Total, _finished.Count, _failures.Count, _state, message);
        }
    }

    private string FailureText()
    {
        if (_failures.Count == 0) { return ""; }
        var text = new StringBuilder("; failed: ");
        text.AppendJoin("; ", _failures.Take(ReasonsShown).Select(f => $"{Day(f.Day)}: {f.Reason}"));
        if (_failures.Count > ReasonsShown) { text.Append(CultureInfo.InvariantCulture, $"; and {_failures.Count - ReasonsShown} more"); }
        return text.ToString();
    }

    /// <summary>Days as ranges of consecutive days (<c>2024-05-01..2024-05-03, 2024-05-07</c>): a long backfill stays one line.</summary>
    public static string Describe(IReadOnlyList<DateOnly> days)
    {
        ArgumentNullException.ThrowIfNull(days);
        var ranges = new List<string>();
        for (var i = 0; i < days.Count;)
        {
            var j = i;
            while (j + 1 < days.Count && days[j + 1] == days[j].AddDays(1)) { j++; }
            ranges.Add(i == j ? Day(days[i]) : $"{Day(days[i])}..{Day(days[j])}");
            i = j + 1;
        }

        return string.Join(", ", ranges);
    }

    private static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}

/// <summary>A backfill's progress as the console shows it (<c>GET /api/backfills/{id}</c>).</summary>
public sealed record BackfillView(string Id, string Recipe, string Job, string From, string To, int Total, int Done, int Failed, string State, string Message);
