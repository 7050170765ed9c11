using Sluice.Core.IO;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>
/// The CLI turns on .NET's inline socket completions before anything opens a socket, unless the user set the variable
/// (docs/ARCHITECTURE.md, "Socket completions run inline"). Checked on the socket engine's own flag, which it reads once
/// when it starts: a switch set too late would show as queued.
/// </summary>
public sealed class InlineSocketCompletionsTests
{
    [Fact]
    public async Task A_run_has_its_socket_engine_complete_inline()
    {
        using var data = new TempFolder();
        var run = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once", "--verbose");
        run.Code.ShouldBe(0, run.Err);
        run.Err.ShouldContain("socket completions: inline (on the socket thread)");
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
