using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Sluice.Core.Recipes;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// Notices a running recipe's <c>recipe.yaml</c> changing on disk. Pipelines, sinks and schedules are built once at
/// start, and taking part of an edit would run a mix of two recipes, so none of it is taken: a Warning says the edit
/// waits for a restart and health is degraded (<c>/healthz</c> lists it) until the file is as it was or the process
/// restarts. Model SQL is different: the models job reads it again before each run (<c>ModelProjectReloader</c>).
/// </summary>
public sealed partial class RecipeFileWatch(Recipe recipe, IEngineServices services)
{
    /// <summary>How often the file is compared with what was loaded.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromSeconds(2);

    private readonly string _path = Path.Combine(recipe.Folder, RecipeLoader.FileName);
    private readonly string? _loaded = Hash(Path.Combine(recipe.Folder, RecipeLoader.FileName));

    public string Component => $"{recipe.Name}: recipe";

    public async Task RunAsync(CancellationToken ct)
    {
        var log = services.Logging.CreateLogger("Sluice.Host");
        var changed = false;
        while (!ct.IsCancellationRequested)
        {
            await Task.Delay(Poll, services.Time, ct).ConfigureAwait(false);
            var now = Hash(_path) != _loaded;
            if (now == changed) { continue; }
            changed = now;
            if (changed)
            {
                Changed(log, recipe.Name, _path);
                services.Health.Degrade(Component, $"recipe changed on disk ({_path}); restart to apply");
            }
            else
            {
                services.Health.Clear(Component);
            }
        }
    }

    private static string? Hash(string path)
    {
        try
        {
            return Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    [LoggerMessage(11702, LogLevel.Warning, "{Recipe}: {Path} changed on disk; this process keeps running the recipe it started with (pipelines, sinks and schedules are built once): restart to apply")]
    private static partial void Changed(ILogger logger, string recipe, string path);
}
