using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Logging;

namespace Sluice.Tests.Core;

/// <summary>The same warning many times prints once, then a count per interval and at the end (issue 19).</summary>
public sealed class RepeatCollapsingLoggerProviderTests
{
    [Fact]
    public void A_warning_repeated_500_times_is_one_line_and_a_count()
    {
        var lines = new List<string>();
        var time = new FakeTimeProvider();
        var provider = new RepeatCollapsingLoggerProvider(LoggerFactory.Create(b => b.AddProvider(new Capture(lines))), time, TimeSpan.FromSeconds(30));
        var log = provider.CreateLogger("Sluice.Files");
        for (var i = 0; i < 500; i++) { log.LogWarning("file {Name} rejected", "a.json"); }
        log.LogWarning("file {Name} rejected", "b.json");
        log.LogInformation("landed");
        log.LogInformation("landed");

        lines.ShouldBe(["Warning: file a.json rejected", "Warning: file b.json rejected", "Information: landed", "Information: landed"]);

        time.Advance(TimeSpan.FromSeconds(30));
        lines.Skip(4).ShouldBe(["Warning: file a.json rejected ... repeated 499 times"]);

        // Still recurring: only counts; then quiet for an interval, so it is forgotten and printed whole when it returns.
        log.LogWarning("file {Name} rejected", "a.json");
        time.Advance(TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(30));
        log.LogWarning("file {Name} rejected", "a.json");
        log.LogWarning("file {Name} rejected", "a.json");
        provider.Dispose();

        lines.Skip(5).ShouldBe(["Warning: file a.json rejected ... repeated 1 time", "Warning: file a.json rejected", "Warning: file a.json rejected ... repeated 1 time"]);
    }

    private sealed class Capture(List<string> lines) : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Add($"{logLevel}: {formatter(state, exception)}");

        public void Dispose()
        {
        }
    }
}
