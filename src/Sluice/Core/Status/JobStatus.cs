using Cronos;

namespace Sluice.Core.Status;

/// <summary>One job's figures in this process: its last run (start, duration, outcome, message) and its next scheduled run.</summary>
public sealed class JobStatus
{
    private readonly TimeProvider _time;
    private readonly CronExpression? _cron;
    private readonly Lock _lock = new();
    private DateTimeOffset? _runningSince;
    private (DateTimeOffset Start, TimeSpan Duration, bool Ok, string Message)? _last;
    private long _runs;
    private long _failures;

    internal JobStatus(string recipe, string name, string? schedule, TimeProvider time)
    {
        Recipe = recipe;
        Name = name;
        Schedule = schedule;
        _time = time;
        _cron = schedule is null ? null : CronExpression.Parse(schedule, CronFormat.Standard);
    }

    public string Recipe { get; }

    public string Name { get; }

    public string QualifiedName => $"{Recipe}/{Name}";

    public string? Schedule { get; }

    /// <summary>A run starts; the returned time goes back to <see cref="Finished"/>.</summary>
    public DateTimeOffset Starting()
    {
        var now = _time.GetUtcNow();
        lock (_lock) { _runningSince = now; }
        return now;
    }

    public void Finished(DateTimeOffset started, bool succeeded, string message)
    {
        var duration = _time.GetUtcNow() - started;
        lock (_lock)
        {
            _runningSince = null;
            _last = (started, duration, succeeded, message);
            _runs++;
            if (!succeeded) { _failures++; }
        }
    }

    internal JobView View(DateTimeOffset now)
    {
        lock (_lock)
        {
            return new JobView(
                Recipe, Name, Schedule, _runningSince is not null, _last?.Start.UtcDateTime, _last?.Duration.TotalSeconds,
                _last is null ? null : _last.Value.Ok ? "succeeded" : "failed", _last?.Message,
                _cron?.GetNextOccurrence(now.UtcDateTime, TimeZoneInfo.Utc), _runs, _failures);
        }
    }
}
