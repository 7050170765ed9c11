using Sluice.Connectors.Pull;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Recipes.Reminders.Pull;

/// <summary>repeat-reminder's <c>mapping:</c> on a pull source: records mapped to attorney events and landed in the reminder store (<see cref="IncrementalPullSource"/>).</summary>
public sealed class ReminderPullMapper : IPullMapper
{
    public object? Parse(ConfigMap map, RecipeContext recipe) => PullOptions.Parse(map, recipe);

    public IRunnableSource Create(IEngineServices services, string recipe, string kind, string pipeline, object options, IIncrementalExtractor extractor) =>
        new IncrementalPullSource(services, recipe, kind, pipeline, (PullOptions)options, extractor);

    /// <summary>In a cluster the attorney events must land in PostgreSQL, and every worker must protect fields with one key.</summary>
    public string? ClusterProblem(object options)
    {
        var store = ((PullOptions)options).Store;
        if (!store.UsesPostgres)
        {
            return $"it lands attorney events in the lake zone '{store.Zone}' of the data folder, which is each worker's own; give its store a postgres: schema, which every worker shares";
        }

        return string.IsNullOrEmpty(Environment.GetEnvironmentVariable(store.KeyEnv))
            ? $"each worker would protect fields with a key of its own data folder ({store.KeyFile}); set {store.KeyEnv} to the same key for every worker"
            : null;
    }
}
