using Sluice.Recipes;
using System.CommandLine;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Hosting;

namespace Sluice.Cli;

/// <summary>What every command shares: the <c>--data</c> option, the engine services built from it, and error reporting.</summary>
internal static class CliContext
{
    public static readonly Option<string?> Data = new("--data")
    {
        Description = "Folder holding all state of a run (default $SLUICE_DATA, else ./sluice-data)",
        Recursive = true,
    };

    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Log debug detail to stderr",
        Recursive = true,
    };

    /// <summary>
    /// <c>--cluster</c> on the commands that read or write state: work on the cluster's shared metadata store
    /// (<c>SLUICE_CLUSTER_POSTGRES</c>, <c>SLUICE_CLUSTER_NAME</c>) from any machine, whatever the data folder holds.
    /// </summary>
    public static readonly Option<bool> Cluster = new("--cluster")
    {
        Description = "Work on the cluster's shared state (the Postgres store named by SLUICE_CLUSTER_POSTGRES and SLUICE_CLUSTER_NAME) instead of a data folder's",
        Recursive = true,
    };

    /// <summary>State a cluster's shared store does not hold yet, by command: <c>--cluster</c> refuses them saying so.</summary>
    private static readonly Dictionary<string, string> NotShared = new(StringComparer.Ordinal)
    {
    };

    /// <summary>Whether the command was given <c>--cluster</c> (<see cref="Cluster"/>).</summary>
    public static bool IsCluster(ParseResult result) => result.GetResult(Cluster) is not null && result.GetValue(Cluster);

    /// <summary>The cluster's shared store from <paramref name="variables"/>; unset is a usage error naming the variable.</summary>
    public static SharedMetadata RequireShared(Func<string, string?> variables) =>
        SharedMetadata.FromVariables(variables)
        ?? throw new SluiceException($"--cluster: {SharedMetadata.PostgresVariable} is not set: name the cluster's shared Postgres store (postgres://user:password@host:port/database, or the recipe's cluster: postgres); eval \"$(scripts/services.sh env)\" sets it for the local one");

    /// <summary>How often the count of a repeated warning is written (and at the end of the command).</summary>
    private static readonly TimeSpan RepeatInterval = TimeSpan.FromSeconds(30);

    /// <summary>The data folder the command works on (<c>--data</c>, <c>SLUICE_DATA</c>, else <c>./sluice-data</c>).</summary>
    public static DataDirectory Folder(ParseResult result) => new(DataDirectory.ResolveRoot(result.GetValue(Data)));

    /// <summary>The engine services of a data folder that must exist already: a command that only reads never creates an empty one.</summary>
    public static EngineServices ExistingServices(ParseResult result, LogLevel level = LogLevel.Warning)
    {
        if (IsCluster(result)) { return Services(result, level); }
        var root = Folder(result).Root;
        return Directory.Exists(root)
            ? Services(result, level)
            : throw new SluiceException($"no data folder at {root}: nothing has run there (pass --data, or set SLUICE_DATA)");
    }

    /// <summary>
    /// The engine services of a data folder that holds something of <paramref name="recipe"/> (of any recipe, when null):
    /// a command pointed at the wrong folder says so, naming it and how to fill it, instead of succeeding on nothing.
    /// </summary>
    public static EngineServices RecipeServices(ParseResult result, string? recipe, LogLevel level = LogLevel.Warning)
    {
        var data = Folder(result);
        if (IsCluster(result)) { return Services(result, level); }
        if (!Directory.Exists(data.Root)) { return ExistingServices(result, level); }
        RecipeFootprint.Require(data, recipe);
        return Services(result, level);
    }

    /// <summary>The engine services of the command's <c>--data</c>, on the cluster's shared store with <c>--cluster</c>.</summary>
    public static EngineServices Services(ParseResult result, LogLevel level = LogLevel.Warning)
    {
        if (!IsCluster(result)) { return Services(result, Folder(result), level); }
        for (var command = result.CommandResult; command is not null; command = command.Parent as System.CommandLine.Parsing.CommandResult)
        {
            if (NotShared.TryGetValue(command.Command.Name, out var why)) { throw new SluiceException($"{command.Command.Name} --cluster: {why} (docs/SCALING.md)"); }
        }

        return Services(result, Folder(result), level, RequireShared(Environment.GetEnvironmentVariable));
    }

    /// <summary>The engine services of <paramref name="data"/> rather than the command's <c>--data</c> (<c>sluice test</c>'s own folders); on <paramref name="shared"/> when given.</summary>
    public static EngineServices Services(ParseResult result, DataDirectory data, LogLevel level, SharedMetadata? shared = null)
    {
        _root = data.Root;
        var min = result.GetValue(Verbose) ? LogLevel.Debug : level;
        var console = LoggerFactory.Create(b => b
            .SetMinimumLevel(min)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
                o.UseUtcTimestamp = true;
            })
            .AddFilter("Microsoft", LogLevel.Warning)
            .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        // Every console line of every command goes through here: the same warning 500 times is one line and a count.
        var logging = LoggerFactory.Create(b => b
            .SetMinimumLevel(min)
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddProvider(new Core.Logging.RepeatCollapsingLoggerProvider(console, TimeProvider.System, RepeatInterval)));
        return new EngineServices(data, TimeProvider.System, logging, Sluice.Connectors.OpenLineage.OpenLineageOptions.FromEnvironment(), shared)
        {
            Tracing = Sluice.Connectors.OpenTelemetry.OtlpTracing.StartFromEnvironment(),
        };
    }

    /// <summary>Loads and validates a recipe; <paramref name="cluster"/>: as a cluster's workers run it (<see cref="RecipeLoader.Cluster"/>).</summary>
    public static Recipe LoadRecipe(string nameOrPath, bool cluster = false) => new RecipeLoader(RecipeComponents.Create()) { Cluster = cluster }.Load(nameOrPath);

    /// <summary>Splits <c>recipe/job</c>.</summary>
    public static (Recipe Recipe, JobDefinition Job) LoadJob(string qualified)
    {
        var slash = qualified.LastIndexOf('/');
        if (slash <= 0 || slash == qualified.Length - 1)
        {
            throw new SluiceException($"'{qualified}' is not <recipe>/<job> (for example vehicle-files/daily-summary).");
        }

        var recipe = LoadRecipe(qualified[..slash]);
        var name = qualified[(slash + 1)..];
        var job = recipe.Job(name)
            ?? throw new SluiceException($"recipe '{recipe.Name}' has no job '{name}' (jobs: {string.Join(", ", recipe.Jobs.Select(j => j.Name))}).");
        return (recipe, job);
    }

    /// <summary>The data folder of the services last built, for messages about its metadata store.</summary>
    private static string? _root;

    /// <summary>
    /// Runs a command body; user errors print their message (no stack trace) and exit 1, a component that failed in a
    /// running recipe exits <see cref="ComponentFailedException.ExitCode"/>.
    /// </summary>
    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (ComponentFailedException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ComponentFailedException.ExitCode;
        }
        catch (ConfigException e)
        {
            foreach (var error in e.Errors)
            {
                await Console.Error.WriteLineAsync(error.ToString()).ConfigureAwait(false);
            }

            return 1;
        }
        catch (SluiceException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (SqliteException e)
        {
            // The store opened at start but failed later (disk full, damaged pages, made read-only meanwhile).
            var root = _root ?? DataDirectory.ResolveRoot(null);
            await Console.Error.WriteLineAsync($"error: the metadata store {Path.Combine(root, "meta.db")} failed: {MetadataUnavailableException.Describe(e, root)}").ConfigureAwait(false);
            return 1;
        }
        catch (Npgsql.NpgsqlException e) when (SharedMetadata.FromEnvironment() is { } shared)
        {
            // The cluster's shared store opened at start but failed later (server gone, connection lost).
            await Console.Error.WriteLineAsync($"error: the shared metadata store {shared} failed: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (TimeoutException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (Exception e) when (Core.IO.DiskFull.Is(e))
        {
            // A condition of the machine, not a defect: what it was and what to do, no stack trace. Nothing that was
            // acknowledged is lost (every commit is one transaction); the same command continues once space is freed.
            await Console.Error.WriteLineAsync($"error: no space left on device: {Core.IO.DiskFull.Describe(e, Path.Combine(_root ?? DataDirectory.ResolveRoot(null), "meta.db"))}; free space and run the command again").ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
    }

    /// <summary>The run lock of a recipe: one <c>run</c> or <c>demo</c> per recipe and data folder.</summary>
    public static ProcessLock TakeRunLock(EngineServices services, string recipe) =>
        ProcessLock.TryAcquire(Path.Combine(services.Data.LocksRoot, $"run-{recipe}.lock"))
        ?? throw new SluiceException($"another 'sluice run' or 'sluice demo' of '{recipe}' is already running on {services.Data.Root}; stop it first (query, job run and the other commands work alongside it).");
}
