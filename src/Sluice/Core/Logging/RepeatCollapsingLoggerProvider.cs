using Microsoft.Extensions.Logging;

namespace Sluice.Core.Logging;

/// <summary>
/// Collapses repeated warnings on the way to the console: the first of a run of identical warnings (same category,
/// level and text) is written at once, the repeats are counted and written as one line, <c>&lt;text&gt; ... repeated N
/// times</c>, at the end of each interval and when the process disposes its logging. A warning that stops recurring
/// is forgotten at the next interval, so when it comes back it is written whole again. Information and below pass as
/// they are. At most <see cref="MaxTracked"/> distinct warnings are counted at once; others pass as they are.
/// </summary>
public sealed class RepeatCollapsingLoggerProvider : ILoggerProvider
{
    public const int MaxTracked = 1_000;

    private readonly ILoggerFactory _inner;
    private readonly ITimer _timer;
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Category, LogLevel Level, string Text), Repeat> _seen = [];

    public RepeatCollapsingLoggerProvider(ILoggerFactory inner, TimeProvider time, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(time);
        _inner = inner;
        _timer = time.CreateTimer(_ => Flush(), null, interval, interval);
    }

    public ILogger CreateLogger(string categoryName) => new Collapsing(this, categoryName, _inner.CreateLogger(categoryName));

    /// <summary>Writes the count of every warning repeated since it was last written, and forgets those that were not.</summary>
    public void Flush()
    {
        List<(ILogger Logger, LogLevel Level, EventId Id, string Line)> lines = [];
        lock (_gate)
        {
            foreach (var (key, repeat) in _seen.ToList())
            {
                if (repeat.Count == 0) { _seen.Remove(key); continue; }
                lines.Add((repeat.Logger, key.Level, repeat.Id, $"{key.Text} ... repeated {repeat.Count} time{(repeat.Count == 1 ? "" : "s")}"));
                repeat.Count = 0;
            }
        }

        foreach (var (logger, level, id, line) in lines) { logger.Log(level, id, line, null, static (s, _) => s); }
    }

    public void Dispose()
    {
        _timer.Dispose();
        Flush();
        _inner.Dispose();
    }

    /// <summary>True when the warning is to be written now (its first time in the interval, or nothing is tracked for it).</summary>
    private bool FirstTime(string category, LogLevel level, string text, EventId id, ILogger logger)
    {
        lock (_gate)
        {
            if (_seen.TryGetValue((category, level, text), out var repeat))
            {
                repeat.Count++;
                return false;
            }

            if (_seen.Count < MaxTracked) { _seen[(category, level, text)] = new Repeat(logger, id); }
            return true;
        }
    }

    private sealed class Repeat(ILogger logger, EventId id)
    {
        public ILogger Logger { get; } = logger;

        public EventId Id { get; } = id;

        public int Count { get; set; }
    }

    private sealed class Collapsing(RepeatCollapsingLoggerProvider owner, string category, ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            if (logLevel >= LogLevel.Warning && !owner.FirstTime(category, logLevel, formatter(state, exception), eventId, inner)) { return; }
            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
