using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>A long <c>run --once</c>, <c>bench</c> or <c>cdc snapshot</c> shows how far it is with the time left; piped, as plain periodic lines (issue 19).</summary>
public sealed class ProgressTests
{
    [Fact]
    public async Task Run_once_over_a_large_drop_prints_files_done_of_the_total_with_an_eta()
    {
        using var data = new TempFolder();
        var generate = await SluiceProcess.RunAsync(data.Path, "generate", "vehicle-files", "--files", "120", "--events-per-file", "2000", "--seed", "5", "--now", "2025-11-08T12:00:00Z");
        generate.Code.ShouldBe(0, generate.Err);

        using var run = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1" }, "run", "vehicle-files", "--once");
        (await run.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, run.Stderr);

        var lines = run.Stderr.Split('\n').Where(l => l.StartsWith("run vehicle-files: ", StringComparison.Ordinal)).ToList();
        lines.Count.ShouldBeGreaterThan(1, run.Stderr);
        // Progress is on standard error: the output a script reads is the result alone.
        run.Stdout.ShouldNotContain("(files)");
        // The total is the files waiting when the count began (some may be done within the first tenth of a second).
        lines.ShouldAllBe(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^run vehicle-files: \d+/\d+ \(files\) \d+%"));
        lines.ShouldContain(l => l.Contains(", eta "));
        System.Text.RegularExpressions.Regex.IsMatch(lines[^1], @"^run vehicle-files: (\d+)/\1 \(files\) 100%").ShouldBeTrue(lines[^1]);
    }

    [Fact]
    public void A_bench_phase_piped_prints_its_first_figures_then_a_line_per_interval_with_the_eta_and_its_end_once()
    {
        var time = new FakeTimeProvider();
        using var output = new StringWriter();
        var progress = Sluice.Cli.BenchProgress.Lines("duckdb models", time, output);

        progress.Report(new JobProgress(0, 30, "days"));
        time.Advance(TimeSpan.FromSeconds(1));
        progress.Report(new JobProgress(1, 30, "2024-01-01"));
        time.Advance(Sluice.Cli.CliProgress.LineEvery);
        progress.Report(new JobProgress(10, 30, "2024-01-10"));
        progress.Report(new JobProgress(30, 30, "2024-01-30"));
        progress.Report(new JobProgress(30, 30, "2024-01-30"));

        output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe(
        [
            "duckdb models: 0/30 (days) 0%",
            $"duckdb models: 10/30 (2024-01-10) 33%, eta {Sluice.Core.Text.ProgressEstimate.Format((Sluice.Cli.CliProgress.LineEvery + TimeSpan.FromSeconds(1)) * 2)}",
            "duckdb models: 30/30 (2024-01-30) 100%, eta 0s",
        ]);
    }

    [Fact]
    public async Task Bench_warehouse_piped_shows_each_phase_with_its_total_and_measures_both_snapshot_strategies_against_their_hand_written_merge()
    {
        using var data = new TempFolder();
        using var bench = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1" },
            "bench", "warehouse", "--engine", "duckdb", "--snapshot-only", "--snapshot-keys", "20000", "--duckdb-memory", "256MB");
        (await bench.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, bench.Stderr);

        foreach (var strategy in new[] { "check", "timestamp" })
        {
            bench.Stderr.ShouldContain($"duckdb snapshot {strategy} day 2: 0/2 (days) 0%");
            bench.Stderr.ShouldContain($"duckdb snapshot {strategy} day 2: 2/2 (2024-01-02) 100%");
        }

        // Day 2 of 20,000 keys: 200 moved (closed + opened) and, for the timestamp strategy, 100 more re-sent later.
        bench.Stdout.ShouldMatch(@"\| duckdb \| check \| 400 \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+x \| <= 1.2x \| 20,200 \|");
        bench.Stdout.ShouldMatch(@"\| duckdb \| timestamp \| 600 \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+x \| <= 1.2x \| 20,300 \|");
    }

    [Fact]
    public async Task Bench_files_piped_shows_the_generation_each_ingest_round_and_the_rounds_with_their_totals()
    {
        using var data = new TempFolder();
        using var bench = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1" },
            "bench", "files", "--events", "20000", "--rounds", "1");
        (await bench.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, bench.Stderr);

        // 20,000 events are two event files (the generator writes a status file between them, dropped before the ingest).
        bench.Stderr.ShouldContain("generate: 4/4 (files) 100%");
        bench.Stderr.ShouldContain("rounds: 0/1 (sluice, then duckdb) 0%");
        bench.Stderr.ShouldContain("sluice ingest round 1: 2/2 (files) 100%");
        bench.Stderr.ShouldContain("rounds: 1/1 (round 1) 100%");
    }

    [Fact]
    public async Task Bench_reminders_piped_shows_the_cases_landed_of_the_total()
    {
        using var data = new TempFolder();
        using var bench = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1" },
            "bench", "reminders", "--cases", "2000");
        (await bench.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, bench.Stderr);

        bench.Stderr.ShouldContain("generate, normalise, land: 1000/2000 (cases) 50%");
        bench.Stderr.ShouldContain("generate, normalise, land: 2000/2000 (cases) 100%");
    }

    [Fact]
    public async Task Progress_can_be_turned_off_and_a_wrong_mode_is_refused_before_any_work_naming_the_variable_and_the_modes()
    {
        using var data = new TempFolder();
        using var quiet = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS_SECONDS"] = "0.1", ["SLUICE_PROGRESS"] = "none" },
            "bench", "reminders", "--cases", "2000");
        (await quiet.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, quiet.Stderr);
        quiet.Stderr.ShouldNotContain("(cases)");
        quiet.Stdout.ShouldNotContain("(cases)");

        using var wrong = SluiceProcess.Start(data.Path, new Dictionary<string, string> { ["SLUICE_PROGRESS"] = "sometimes" }, "bench", "reminders", "--cases", "2000");
        (await wrong.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(1, wrong.Stderr);
        wrong.Stderr.ShouldContain("SLUICE_PROGRESS: 'sometimes' is not a progress mode: auto");
        wrong.Stderr.ShouldNotContain("   at ");
        wrong.Stdout.ShouldBeEmpty();
    }
}
