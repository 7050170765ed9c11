using System.CommandLine;
using Microsoft.Extensions.Logging;
using Sluice.Core.DeadLetters;
using Sluice.Hosting;

namespace Sluice.Cli.Commands;

internal static partial class RunCommand
{
    // Debug: a fact of the runtime, for whoever checks a run's CPU (--verbose shows it; a test proves the switch works).
    [LoggerMessage(39985, LogLevel.Debug, "socket completions: {Mode}")]
    private static partial void LogSocketCompletions(ILogger logger, string mode);

    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "Recipe folder name under recipes/, or a path to a recipe folder" };
        var once = new Option<bool>("--once") { Description = "Process everything available now (and the after-load jobs), fire no schedule, open no port, then exit" };
        var port = new Option<int>("--port") { Description = "HTTP port of the management endpoint (/healthz, /readyz, /metrics, /api/status) and of the recipe's own HTTP routes (0: any free port)", DefaultValueFactory = _ => Serving.HttpServerOptions.DefaultPort };
        var bind = new Option<string>("--bind") { Description = "Address the HTTP server listens on (0.0.0.0 for every interface; the default keeps it to this machine)", DefaultValueFactory = _ => "127.0.0.1" };
        var noSchedule = new Option<bool>("--no-schedule") { Description = "Fire no job on its schedule: jobs run only by 'sluice job run' (for example with --now)" };
        var cluster = new Option<bool>("--cluster") { Description = "Run as one worker of a cluster: HTTP ingest lands in the NATS JetStream cluster named by SLUICE_CLUSTER_NATS, the workers share each pipeline and keep their state in the Postgres store named by SLUICE_CLUSTER_POSTGRES (or the recipe's cluster: section; docs/SCALING.md)" };
        var failOn = DeadLetterReport.FailOption();
        failOn.Description += " (with --once)";
        var command = new Command("run", "Run a recipe's pipelines and schedules until Ctrl-C") { recipe, once, port, bind, noSchedule, cluster, failOn };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var definition = CliContext.LoadRecipe(result.GetValue(recipe)!, result.GetValue(cluster));
            // The recipe's cluster: section under the SLUICE_CLUSTER_* variables, which win.
            var variables = Cluster.ClusterSettings.Variables(definition, Environment.GetEnvironmentVariable);
            var clusterOptions = result.GetValue(cluster) ? ClusterMode(definition, result.GetValue(once), variables) : null;
            var services = clusterOptions is null
                ? CliContext.Services(result, LogLevel.Information)
                : CliContext.Services(result, CliContext.Folder(result), LogLevel.Information, CliContext.RequireShared(variables));
            await using var disposeServices = services.ConfigureAwait(false);
            services.Cluster = clusterOptions;
            LogSocketCompletions(services.Logging.CreateLogger("Sluice.Cli.Run"), Core.IO.InlineSocketCompletions.Describe());
            using var runLock = CliContext.TakeRunLock(services, definition.Name);
            var worker = clusterOptions is null ? null : Cluster.ClusterWorker.Join(services, definition.Name, result.GetValue(port));
            using var letters = DeadLetterTally.Begin();
            var host = new RecipeHost(definition, services) { Http = new Serving.HttpServerOptions(result.GetValue(bind)!, result.GetValue(port)), ServeManagement = true, Schedules = !result.GetValue(noSchedule) };
            await using (host.ConfigureAwait(false))
            {
                if (worker is not null)
                {
                    using var stopBeating = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var beating = Cluster.ClusterWorker.BeatAsync(worker, services, stopBeating.Token);
                    // With --port 0 the registry shows the port the server bound, not 0.
                    _ = host.HttpStarted.ContinueWith(t => worker.Bound(t.Result.Port), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
                    string? failure = null;
                    try
                    {
                        await host.RunAsync(ct).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        failure = e.Message;
                        throw;
                    }
                    finally
                    {
                        await stopBeating.CancelAsync().ConfigureAwait(false);
                        await beating.ConfigureAwait(false);
                        Cluster.ClusterWorker.Stop(worker, failure);
                    }

                    return 0;
                }

                if (result.GetValue(once))
                {
                    // A large drop: how many of the files that were waiting are done, while they are taken in.
                    var units = await CliProgress.ShowAsync($"run {definition.Name}", FilesLeft(services), host.RunOnceAsync(ct)).ConfigureAwait(false);
                    await Console.Out.WriteLineAsync($"{definition.Name}: processed {units} new unit(s) of input; see ./sluice query, ./sluice dlq list, ./sluice job history").ConfigureAwait(false);
                    return await DeadLetterReport.FinishAsync(letters, result.GetValue(failOn)).ConfigureAwait(false);
                }

                await host.RunAsync(ct).ConfigureAwait(false);
                return 0;
            }
        }));
        return command;
    }

    /// <summary>The cluster's settings, once the recipe is one cluster mode can run (else a usage error naming what it cannot).</summary>
    private static Cluster.ClusterOptions ClusterMode(Core.Recipes.Recipe definition, bool once, Func<string, string?> variables)
    {
        if (once) { throw new Core.SluiceException("run --once does not take --cluster: a cluster's log has no end to reach; run the workers until stopped"); }
        var problems = Cluster.ClusterRecipeCheck.Problems(definition);
        if (problems.Count > 0) { throw new Core.SluiceException("--cluster: " + string.Join(Environment.NewLine + "--cluster: ", problems)); }
        return Cluster.ClusterOptions.FromEnvironment(variables);
    }

    /// <summary>Files waiting in the recipe's drop folders, against the most seen waiting; null when none of its sources counts files.</summary>
    private static Func<(long Done, long Total, string Unit)?> FilesLeft(Sluice.Hosting.EngineServices services)
    {
        long total = 0;
        return () =>
        {
            long left;
            try
            {
                left = services.Status.Pipelines.Select(p => p.Backlog?.Invoke()).Where(b => b?.Unit == "files").Sum(b => b!.Value);
            }
            catch (IOException)
            {
                return null; // a drop folder between two renames: the next look counts it
            }

            total = Math.Max(total, left);
            return total == 0 ? null : (total - left, total, "files");
        };
    }
}
