using Microsoft.Extensions.Time.Testing;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Hosting;

/// <summary>Every wait in the stop path is bounded: a part that never observes the stop cannot keep the host (and so the process) running.</summary>
public sealed class BoundedStopTests
{
    [Fact]
    public async Task A_source_that_ignores_the_stop_cannot_keep_the_host_from_returning_after_its_bound()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var engine = new Engine(time);
        var recipe = new Recipe { Name = "stuck", Folder = engine.DataRoot, Pipelines = [new PipelineDefinition("p", "stuck", new StuckSource(), [])], Jobs = [] };
        var host = new RecipeHost(recipe, engine.Services);
        await using (host)
        {
            host.StopTimeout.ShouldBe(TimeSpan.FromSeconds(20), "the source's 10 s drain plus the 10 s margin");
            using var stop = new CancellationTokenSource();
            var run = host.RunAsync(stop.Token);
            await stop.CancelAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!run.IsCompleted && DateTime.UtcNow < deadline)
            {
                // Fake time: the bound passes without the test waiting for it.
                time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(10);
            }

            run.IsCompleted.ShouldBeTrue("the host returned once its stop bound had passed");
            (await Should.ThrowAsync<SluiceException>(run)).Message.ShouldContain("stuck: did not stop within 20 s of the stop signal");
        }
    }

    /// <summary>A source whose run never ends and never looks at its token (a stalled loop).</summary>
    private sealed class StuckSource : ISourceFactory, IRunnableSource
    {
        private readonly TaskCompletionSource _never = new();

        public IRunnableSource Create(IEngineServices services) => this;

        public Task<int> RunOnceAsync(CancellationToken ct) => Task.FromResult(0);

        public Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct) => _never.Task;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
