using Sluice.Core.IO;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>
/// .NET's inline socket completions, on by default outside cluster mode (docs/ARCHITECTURE.md, "Socket completions run
/// inline"); a variable the user sets decides. Checked on the socket engine's own flag, which it reads once when it starts.
/// </summary>
public sealed class InlineSocketCompletionsTests
{
    [Fact]
    public async Task A_run_with_nothing_set_completes_inline_by_default()
    {
        Environment.GetEnvironmentVariable(InlineSocketCompletions.Variable).ShouldBeNull("the test process must not set the switch for this test to mean anything");
        using var data = new TempFolder();
        using var process = SluiceProcess.Start(data.Path, "run", "vehicle-files", "--once", "--verbose");
        (await process.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, process.Stderr);
        process.Stderr.ShouldContain("socket completions: inline (on the socket thread)");
    }

    [Fact]
    public async Task A_run_with_the_variable_set_to_1_has_its_socket_engine_complete_inline()
    {
        using var data = new TempFolder();
        using var process = SluiceProcess.Start(data.Path, new Dictionary<string, string> { [InlineSocketCompletions.Variable] = "1" }, "run", "vehicle-files", "--once", "--verbose");
        (await process.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, process.Stderr);
        process.Stderr.ShouldContain("socket completions: inline (on the socket thread)");
    }

    [Fact]
    public async Task A_user_who_sets_the_variable_to_0_keeps_the_thread_pool_hop()
    {
        using var data = new TempFolder();
        using var process = SluiceProcess.Start(data.Path, new Dictionary<string, string> { [InlineSocketCompletions.Variable] = "0" }, "run", "vehicle-files", "--once", "--verbose");
        (await process.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, process.Stderr);
        process.Stderr.ShouldContain("socket completions: queued to the thread pool");
    }
}
