using Sluice.Connectors.Pull;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;

namespace Sluice.Tests.Core;

/// <summary>
/// A pull's cursor numbers its records for a sink that skips replays by them (<see cref="PullCursor.Log"/>): the
/// numbers and the log go on across restarts, and a cursor deleted to pull everything again starts a new log, so the
/// rows pulled again are not taken for those committed before.
/// </summary>
public sealed class PulledPagesCursorTests : IDisposable
{
    private const string Source = "salesforce:r/p";
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sluice-pulled-pages-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Record_numbers_and_the_log_go_on_across_loads_and_a_deleted_cursor_starts_a_new_log()
    {
        var store = new MetadataStore(new DataDirectory(_root));
        var letters = new DeadLetterStore(store, TimeProvider.System);
        var pages = new PulledPages(store, Source);

        var first = pages.Load(null);
        first.LastRow.ShouldBe(0);
        first.Log.ShouldStartWith(Source + "@");
        pages.Record(Page(1, 3), letters, Source, []);
        pages.Record(Page(2, 5), letters, Source, []);

        var again = new PulledPages(store, Source).Load(1);
        again.Log.ShouldBe(first.Log, "a restart numbers on in the same log");
        again.LastRow.ShouldBe(3, "the last record number every sink has");
        again.Pages.Select(p => (p.Position, p.LastRow)).ShouldBe([(2L, 5L)], "the page handed on and not acknowledged keeps its numbers");

        using (var c = store.Connect())
        {
            c.Execute("DELETE FROM pull_pages WHERE source = $s", null, ("$s", Source));
            c.Execute("DELETE FROM pull_state WHERE source = $s", null, ("$s", Source));
        }

        var reset = new PulledPages(store, Source).Load(null);
        reset.LastRow.ShouldBe(0);
        reset.Log.ShouldNotBe(first.Log, "a reset cursor's records are numbered in a new log");
    }

    private static PulledPage Page(long position, long lastRow) =>
        new(position, PullWatermark.Empty, [new PulledRecord($"a{position}", new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), "{}"u8.ToArray())], lastRow);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root)) { Directory.Delete(_root, recursive: true); }
    }
}
