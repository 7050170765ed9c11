using System.Diagnostics;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Sluice.IntegrationTests.Hosting;

/// <summary>
/// A stop while a sink is mid-write and slow (the mock API holds each request open, as a struggling API does):
/// <c>sluice run</c> says it is stopping and what it waits for, exits within its bound with the write abandoned
/// (never checkpointed), a second Ctrl-C exits at once naming what it abandons, and a restart leaves every sink as a
/// clean run does.
/// </summary>
public sealed class PromptStopTests(ITestOutputHelper output)
{
    /// <summary>A process start alone took 55 s at load 100; set-up and catching up get the same room.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    /// <summary>
    /// The host's stop ends within 25 s whatever its sinks do (10 s drain, 10 s margin, 5 s to close); the rest is
    /// room for a loaded machine. Before the bound covered the whole stop, exits of 60-90 s were seen.
    /// </summary>
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task A_stop_mid_write_to_a_hanging_api_exits_within_its_bound_a_second_ctrl_c_at_once_and_a_restart_leaves_every_sink_exact()
    {
        // The API's requests hang for longer than the drain, well within the sink's own timeout: a stop finds the write in flight.
        await using var scenario = await CdcScenario.CreateAsync(tweak: yaml => yaml.Replace("timeout: 5s\n", "timeout: 300s\n", StringComparison.Ordinal));
        scenario.Api.Latency = TimeSpan.FromMinutes(4);
        await scenario.InsertAsync(1000, seed: 70);

        using (var first = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
        {
            await WriteInFlightAsync(scenario, first);
            var watch = Stopwatch.StartNew();
            var code = await first.StopAsync(signal: 15);
            watch.Stop();
            output.WriteLine($"SIGTERM mid-write: exit {code} after {watch.Elapsed.TotalSeconds:0.0} s (load {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
            code.ShouldBe(0, first.Stderr);
            watch.Elapsed.ShouldBeLessThan(ExitWithin, $"SIGTERM with a sink's write in flight ends the run within its bound\n{first.Stderr}");
            (first.Stdout + first.Stderr).ShouldContain("engagement-cdc: stopping (stop signal)");
            (first.Stdout + first.Stderr).ShouldContain("stopped cleanly");
        }

        scenario.Api.Stats().DistinctIds.ShouldBe(0, "the write in flight was abandoned, not answered");
        await scenario.InsertAsync(500, seed: 71);
        using (var second = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
        {
            await WriteInFlightAsync(scenario, second);
            second.Interrupt();
            // The second Ctrl-C once the first has started the stop (it then has something to name).
            await second.WaitForOutputAsync("stopping (stop signal)", Patience);
            var forced = Stopwatch.StartNew();
            second.Interrupt();
            (await second.WaitAsync(SluiceProcess.ExitBound)).ShouldBe(130, second.Stderr);
            output.WriteLine($"second Ctrl-C: exit after {forced.Elapsed.TotalSeconds:0.0} s");
            second.Stderr.ShouldContain("second stop signal, exiting now (abandoned: ");
            second.Stderr.ShouldContain("engagement-cdc: pipeline 'cdc'");
        }

        scenario.Api.Latency = TimeSpan.Zero;
        using var third = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        await scenario.WaitForAllSinksAsync(Patience);
        await scenario.AssertExactAsync();
        (await scenario.PgCountAsync()).ShouldBe(1500);
        (await third.StopAsync()).ShouldBe(0, third.Stderr);
    }

    /// <summary>Until ClickHouse holds every row (the other sinks are through) and the API sink's request hangs at the API.</summary>
    private static async Task WriteInFlightAsync(CdcScenario scenario, SluiceProcess run)
    {
        var expected = await scenario.PgCountAsync();
        await CdcScenario.WaitUntilAsync(async () => scenario.Api.Waiting > 0 && await scenario.ClickHouseCountAsync() == expected, Patience,
            async () => $"clickhouse {await scenario.ClickHouseCountAsync()} of {expected}, api requests waiting {scenario.Api.Waiting}\n{run.Stderr}");
    }
}
