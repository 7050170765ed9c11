using Shouldly;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>
/// Incrementals find their own stale days (issue 19): a changed source day, an edited model, a day a missed schedule
/// never ran; exactly those model-days run again (the run log says which), and the tables equal a fresh run's.
/// </summary>
public sealed class IncrementalDaysTests
{
    // Reads only the source day it runs as of.
    private const string Daily = "/*\nkind: incremental\npartition_by: day\nreads: day\n*/\nSELECT day, id, name FROM raw.src WHERE day = {{ as_of }}";

    // Per day, the count of that day's rows of dw.daily.
    private static string Counts(string factor) =>
        $"/*\nkind: incremental\npartition_by: day\nreads: day\n*/\nSELECT {{{{ as_of }}}} AS day, count(*) * {factor} AS n FROM dw.daily WHERE day = {{{{ as_of }}}}";

    // Per day, every source row up to it: reads history (the default).
    private const string Running = "/*\nkind: incremental\npartition_by: day\n*/\nSELECT {{ as_of }} AS day, count(*) AS n FROM dw.daily WHERE day <= {{ as_of }}";

    private static async Task<ModelsHarness> FourDaysAsync(string engine)
    {
        var h = await ModelsHarness.CreateAsync(engine);
        h.Model("dw.daily", Daily);
        h.Model("mart.counts", Counts("1"));
        h.Model("mart.running", Running);
        h.Day("2024-03-01", "SELECT * FROM (VALUES (1, 'Ann')) v(id, name)");
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben')) v(id, name)");
        h.Day("2024-03-03", "SELECT * FROM (VALUES (3, 'Cy')) v(id, name)");
        h.Day("2024-03-04", "SELECT * FROM (VALUES (4, 'Di')) v(id, name)");
        await h.RunAsync();
        return h;
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Late_data_recomputes_its_day_and_the_readers_of_that_day_and_nothing_else(string engine)
    {
        await using var h = await FourDaysAsync(engine);
        var (runs, last) = h.RunsSince(0);
        runs.Length.ShouldBe(12);

        // A rerun with nothing new runs nothing.
        (await h.RunAsync()).Message.ShouldStartWith("nothing to do");
        h.RunsSince(last).Runs.ShouldBeEmpty();

        // Day 2 gets a late row: dw.daily and mart.counts recompute day 2 only; mart.running (history) days 2 to 4.
        h.Day("2024-03-02", "SELECT * FROM (VALUES (1, 'Ann'), (2, 'Ben'), (5, 'Eve')) v(id, name)");
        await h.RunAsync();
        (runs, _) = h.RunsSince(last);
        runs.ShouldBe(["dw.daily@2024-03-02", "mart.counts@2024-03-02", "mart.running@2024-03-02", "mart.running@2024-03-03", "mart.running@2024-03-04"]);
        (await h.Lines("SELECT day, n FROM mart.counts ORDER BY day")).ShouldBe(["2024-03-01|1", "2024-03-02|3", "2024-03-03|1", "2024-03-04|1"]);
        (await h.Lines("SELECT day, n FROM mart.running ORDER BY day")).ShouldBe(["2024-03-01|1", "2024-03-02|4", "2024-03-03|5", "2024-03-04|6"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task An_edited_model_recomputes_all_its_days_and_its_readers_only_where_its_content_changed(string engine)
    {
        await using var h = await FourDaysAsync(engine);
        var (_, last) = h.RunsSince(0);

        // A new result: every day of mart.counts, nothing upstream.
        h.Model("mart.counts", Counts("10"));
        await h.RunAsync();
        var (runs, next) = h.RunsSince(last);
        runs.ShouldBe(["mart.counts@2024-03-01", "mart.counts@2024-03-02", "mart.counts@2024-03-03", "mart.counts@2024-03-04"]);
        (await h.Lines("SELECT day, n FROM mart.counts ORDER BY day")).ShouldBe(["2024-03-01|10", "2024-03-02|20", "2024-03-03|10", "2024-03-04|10"]);

        // The same rows written differently: dw.daily recomputes its days, and its readers see the same content.
        h.Model("dw.daily", Daily.Replace("WHERE day = {{ as_of }}", "WHERE {{ as_of }} = day AND id > 0", StringComparison.Ordinal));
        await h.RunAsync();
        h.RunsSince(next).Runs.ShouldBe(["dw.daily@2024-03-01", "dw.daily@2024-03-02", "dw.daily@2024-03-03", "dw.daily@2024-03-04"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_scheduled_run_fills_the_days_a_missed_schedule_never_ran_and_a_range_recomputes_its_days(string engine)
    {
        await using var h = await FourDaysAsync(engine);
        var (_, last) = h.RunsSince(0);

        // The schedule stopped after day 4 and comes back as of day 7: days 5 to 7 (no files) run, days 1 to 4 do not.
        await h.RunAsOfAsync("2024-03-07");
        var (runs, next) = h.RunsSince(last);
        runs.ShouldBe(new[] { "05", "06", "07" }.SelectMany(d => new[] { $"dw.daily@2024-03-{d}", $"mart.counts@2024-03-{d}", $"mart.running@2024-03-{d}" }).Order(StringComparer.Ordinal).ToArray());
        (await h.Lines("SELECT day, n FROM mart.running WHERE day >= DATE '2024-03-05' ORDER BY day")).ShouldBe(["2024-03-05|5", "2024-03-06|5", "2024-03-07|5"]);

        // A forced range (a backfill, --event-time-start/--event-time-end, the look-back) recomputes its days, whatever their fingerprints.
        await h.RunAsOfAsync("2024-03-07", "2024-03-02", "2024-03-03");
        h.RunsSince(next).Runs.ShouldBe(new[] { "02", "03" }.SelectMany(d => new[] { $"dw.daily@2024-03-{d}", $"mart.counts@2024-03-{d}", $"mart.running@2024-03-{d}" }).Order(StringComparer.Ordinal).ToArray());
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_selected_run_records_its_fingerprints_so_the_next_run_neither_repeats_it_nor_misses_its_readers(string engine)
    {
        await using var h = await FourDaysAsync(engine);
        var (_, last) = h.RunsSince(0);

        // Day 4 gets a late row and only dw.daily is run for it (models run --select dw.daily --date 2024-03-04).
        h.Day("2024-03-04", "SELECT * FROM (VALUES (4, 'Di'), (5, 'Eve')) v(id, name)");
        await h.Processor().RunSelectedAsync(h.Project().Select(["dw.daily"]), new DateOnly(2024, 3, 4), "manual", "backfill", CancellationToken.None);
        var (runs, next) = h.RunsSince(last);
        runs.ShouldBe(["dw.daily@2024-03-04"]);

        // The next run recomputes the readers of what the selected run changed, and not the selected model-day again.
        await h.RunAsync();
        h.RunsSince(next).Runs.ShouldBe(["mart.counts@2024-03-04", "mart.running@2024-03-04"]);
        (await h.Lines("SELECT day, n FROM mart.counts ORDER BY day")).ShouldBe(["2024-03-01|1", "2024-03-02|2", "2024-03-03|1", "2024-03-04|2"]);
        (await h.RunAsync()).Message.ShouldStartWith("nothing to do");
    }
}
