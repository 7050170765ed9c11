using Microsoft.Extensions.Logging;

namespace Sluice.IntegrationTests.Support;

/// <summary>Every log message, as text, for tests that check what was said.</summary>
internal sealed class CapturingLogs : ILoggerFactory, ILoggerProvider
{
    private readonly System.Text.StringBuilder _text = new();

    public string Text { get { lock (_text) { return _text.ToString(); } } }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    private sealed class Logger(CapturingLogs owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._text) { owner._text.AppendLine(formatter(state, exception)); }
        }
    }
}
