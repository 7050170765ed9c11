using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Postgres;
using Sluice.Core.Resilience;

namespace Sluice.Tests.Cluster;

/// <summary>
/// A cluster backfill's page JetStream never stores (<see cref="PostgresBackfillJob.PublishRetrier"/>, on a fake clock):
/// published nine times in all after pauses of 1 s doubling to 30 s, each refusal a warning 27651, and then the backfill
/// stops with a message that names the stream, the page and the rows published before it. (JetStream refusing and then
/// storing: ClusterBackfillRetryTests.)
/// </summary>
public sealed class BackfillPublishRetryTests
{
    private const string Stream = "SLUICE_c1_engagement-cdc_cdc_cdc";

    private static readonly PgBackfillProgress Started = PgBackfillProgress.Start(DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddDays(1));

    [Fact]
    public async Task A_page_never_stored_is_published_nine_times_and_the_backfill_stops_naming_the_stream_the_page_and_the_rows_published()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var start = time.GetUtcNow();
        var warnings = new List<(int Id, string Text)>();
        var retry = PostgresBackfillJob.PublishRetrier(Stream, time, new Capture(warnings));
        var calls = 0;
        var run = retry.RunAsync(_ =>
        {
            calls++;
            return Task.FromException(new EventsNotStoredException($"JetStream stream {Stream} did not confirm it stored the changes: no quorum ({calls})"));
        }, CancellationToken.None);

        // The pauses are timers on the fake clock: a second at a time, a minute of real time at most (a loaded machine).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!run.IsCompleted && DateTime.UtcNow < deadline)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5);
        }

        var error = await Should.ThrowAsync<RetriesExhaustedException>(run.WaitAsync(TimeSpan.FromSeconds(1)));
        calls.ShouldBe(9);
        error.Attempts.ShouldBe(9);
        warnings.ShouldAllBe(w => w.Id == 27651);
        warnings.Select(w => w.Text).ShouldBe(new[] { 1, 2, 4, 8, 16, 30, 30, 30 }.Select((s, i) =>
            $"JetStream stream {Stream} did not store a backfill page (JetStream stream {Stream} did not confirm it stored the changes: no quorum ({i + 1})): attempt {i + 1} of 9; publishing it again in {s} s"));
        (time.GetUtcNow() - start).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(121), "the pauses ran on the job's clock");

        // The third page of 200 rows, after the two recorded: named by the keys it spans, not by where it ends.
        var last = Started with { After = 400, Rows = 400, Pages = 2 };
        PostgresBackfillJob.NotStored(Stream, "event_id", last, last with { After = 600, Rows = 600, Pages = 3 }, error).Message.ShouldBe(
            $"postgres_backfill: JetStream stream {Stream} did not store the page after event_id 400 (up to event_id 600) in 9 attempts " +
            $"(JetStream stream {Stream} did not confirm it stored the changes: no quorum (9)); the backfill stopped there (400 rows published in 2 pages); once NATS is back, the same `sluice backfill` (the same --from and --to) resumes it after them");
        PostgresBackfillJob.NotStored(Stream, "event_id", Started, Started with { After = 200, Rows = 200, Pages = 1 }, error).Message
            .ShouldContain("did not store the page at the start (up to event_id 200) in 9 attempts");
    }

    private sealed class Capture(List<(int Id, string Text)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            logLevel.ShouldBe(LogLevel.Warning);
            lines.Add((eventId.Id, formatter(state, exception)));
        }
    }
}
