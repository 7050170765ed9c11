using System.Net.Http;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Time.Testing;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Serving;

namespace Sluice.IntegrationTests.Hosting;

/// <summary>
/// A component that fails ends the run at once, while the rest of the host (a cron schedule on a clock that never
/// moves, the replay-request poll) would otherwise run forever; meanwhile <c>/healthz</c> says what failed.
/// </summary>
public sealed class RecipeHostFailureTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(60); // a bound on a hang, generous for a loaded CI machine

    [Fact]
    public async Task A_source_that_throws_ends_RunAsync_with_its_error_and_stops_the_other_components()
    {
        using var engine = new Engine(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 30, TimeSpan.Zero)));
        var failing = new FakeSource();
        var healthy = new FakeSource();
        await using var host = Host(Recipe(failing, healthy), engine);
        var run = host.RunAsync(CancellationToken.None);

        await healthy.Started.Task.WaitAsync(Prompt);
        failing.Fail(new FatalException("postgres_cdc: table public.missing_table not found"));

        var error = await Should.ThrowAsync<ComponentFailedException>(() => run.WaitAsync(Prompt));
        error.Message.ShouldBe("fake: pipeline 'broken' (fake) failed: postgres_cdc: table public.missing_table not found");
        error.InnerException.ShouldBeOfType<FatalException>();
        healthy.Stopped.ShouldBeTrue("the other pipeline was stopped, as on Ctrl-C");
        engine.Services.Health.Failures.ShouldBe([("fake: pipeline 'broken' (fake)", "postgres_cdc: table public.missing_table not found")]);
    }

    [Fact]
    public async Task An_unexpected_exception_is_reported_by_type_and_message_and_a_stop_is_not_a_failure()
    {
        using var engine = new Engine(new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 30, TimeSpan.Zero)));
        var failing = new FakeSource();
        await using (var host = Host(Recipe(failing, new FakeSource()), engine))
        {
            var run = host.RunAsync(CancellationToken.None);
            await failing.Started.Task.WaitAsync(Prompt);
            failing.Fail(new InvalidOperationException("a bug"));
            (await Should.ThrowAsync<ComponentFailedException>(() => run.WaitAsync(Prompt))).Reason.ShouldBe("InvalidOperationException: a bug");
        }

        using var stop = new CancellationTokenSource();
        await using (var host = Host(Recipe(new FakeSource(), new FakeSource()), engine))
        {
            var run = host.RunAsync(stop.Token);
            await stop.CancelAsync();
            await run.WaitAsync(Prompt);
        }
    }

    [Fact]
    public async Task While_the_others_drain_after_a_failure_healthz_answers_503_with_the_component_and_reason()
    {
        using var engine = new Engine();
        var failing = new FakeSource();
        var draining = new FakeSource { Drain = new TaskCompletionSource() };
        await using var host = Host(Recipe(failing, draining), engine);
        var run = host.RunAsync(CancellationToken.None);
        using var client = new HttpClient { BaseAddress = await host.HttpStarted.WaitAsync(Prompt) };
        (await GetAsync(client)).Status.ShouldBe(200);

        failing.Fail(new FatalException("postgres_pull: the server refused the login (password authentication failed)"));
        var deadline = DateTime.UtcNow + Prompt;
        var (status, body) = await GetAsync(client);
        while (status == 200 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            (status, body) = await GetAsync(client);
        }

        status.ShouldBe(503);
        body.GetProperty("status").GetString().ShouldBe("unavailable");
        var problem = body.GetProperty("problems")[0];
        problem.GetProperty("component").GetString().ShouldBe("fake: pipeline 'broken' (fake)");
        problem.GetProperty("reason").GetString().ShouldBe("postgres_pull: the server refused the login (password authentication failed)");
        run.IsCompleted.ShouldBeFalse("the other pipeline is still draining");

        draining.Drain.SetResult();
        await Should.ThrowAsync<ComponentFailedException>(() => run.WaitAsync(Prompt));
    }

    private static async Task<(int Status, JsonElement Body)> GetAsync(HttpClient client)
    {
        using var response = await client.GetAsync(new Uri("/healthz", UriKind.Relative));
        return ((int)response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>The fake sources serve HTTP: on a free port.</summary>
    private static RecipeHost Host(Recipe recipe, Engine engine) => new(recipe, engine.Services) { Http = new HttpServerOptions("127.0.0.1", 0) };

    /// <summary>Two pipelines of fake sources and a job scheduled every minute (which never comes on a fake clock).</summary>
    private static Recipe Recipe(FakeSource broken, FakeSource other) => new()
    {
        Name = "fake",
        Folder = Path.GetTempPath(),
        Pipelines = [new PipelineDefinition("broken", "fake", new Factory(broken), []), new PipelineDefinition("other", "fake", new Factory(other), [])],
        Jobs = [new JobDefinition("fake", "minutely", "none", "* * * * *", new NeverJob())],
    };

    private sealed class Factory(FakeSource source) : ISourceFactory
    {
        public IRunnableSource Create(IEngineServices services) => source;
    }

    private sealed class NeverJob : IJobFactory, IJob
    {
        public IJob Create(IEngineServices services) => this;

        public Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct) => throw new InvalidOperationException("the fake clock never reaches a schedule");
    }

    /// <summary>Runs until stopped or told to fail; on a stop it drains until <see cref="Drain"/> completes. Serves HTTP (no routes), so the host starts its server.</summary>
    private sealed class FakeSource : IRunnableSource, IHttpEndpoints
    {
        private readonly TaskCompletionSource _failure = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource? Drain { get; init; }

        /// <summary>Longer than any wait of the test: the host's stop bound must not end a drain the test holds open.</summary>
        public TimeSpan DrainTimeout => TimeSpan.FromMinutes(5);

        public bool Stopped { get; private set; }

        public long MaxRequestBodyBytes => 1024;

        public bool Healthy => true;

        public void Fail(Exception error) => _failure.SetException(error);

        public Task<int> RunOnceAsync(CancellationToken ct) => Task.FromResult(0);

        public async Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct)
        {
            Started.TrySetResult();
            try
            {
                await _failure.Task.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Stopped = true;
                if (Drain is not null) { await Drain.Task; }
                throw;
            }
        }

        public void MapEndpoints(IEndpointRouteBuilder routes, ServingContext context)
        {
        }

        public void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks)
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
