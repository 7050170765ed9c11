using System.CommandLine;
using Sluice.Connectors.Http;
using Sluice.Core;
using Sluice.Recipes.TestServers;

namespace Sluice.Cli.Commands;

internal static class MockApiCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1", DefaultValueFactory = _ => 8099 };
        var failRate = new Option<double>("--fail-rate") { Description = "Share of requests failed on purpose (0..1): 503, 500, 429 + Retry-After in turn", DefaultValueFactory = _ => 0 };
        var latency = new Option<double>("--latency") { Description = "Milliseconds before each answer", DefaultValueFactory = _ => 0 };
        var downFor = new Option<double>("--down-for") { Description = "Seconds after start during which every request gets 503", DefaultValueFactory = _ => 0 };
        var command = new Command("mock-api", "The stand-in external API: POST /events records event ids, GET /stats shows {received, distinct_ids, failed}") { port, failRate, latency, downFor };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var rate = result.GetValue(failRate);
            if (rate is < 0 or > 1) { throw new SluiceException($"--fail-rate must be between 0 and 1, got {rate}."); }
            var options = new MockEventsApiOptions
            {
                Port = result.GetValue(port),
                FailRate = rate,
                Latency = TimeSpan.FromMilliseconds(Math.Max(0, result.GetValue(latency))),
                DownFor = TimeSpan.FromSeconds(Math.Max(0, result.GetValue(downFor))),
            };
            var api = await MockEventsApi.StartAsync(options, TimeProvider.System, ct).ConfigureAwait(false);
            await using (api.ConfigureAwait(false))
            {
                await Console.Out.WriteLineAsync($"mock API listening on {api.EventsUrl} (stats: {api.BaseUrl}stats); Ctrl-C stops").ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    var stats = api.Stats();
                    await Console.Out.WriteLineAsync($"stopped: received {stats.Received}, distinct ids {stats.DistinctIds}, failed {stats.Failed}").ConfigureAwait(false);
                }
            }

            return 0;
        }));
        return command;
    }
}
