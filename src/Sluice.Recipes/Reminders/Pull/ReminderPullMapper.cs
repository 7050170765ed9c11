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

    /// <summary>
    /// In a cluster the attorney events land in a store every worker shares, and every worker protects fields with one
    /// key. The lake zone is shared through the cluster's lake (manifest and watermark in the shared metadata store,
    /// files under <c>SLUICE_CLUSTER_FOLDER</c>), where each page commits under the pull's lease
    /// (<see cref="LakeReminderWarehouse.AppendAsync"/>); PostgreSQL is shared by its server.
    /// </summary>
    public string? ClusterProblem(object options)
    {
        var store = ((PullOptions)options).Store;
        if (!store.UsesPostgres && string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Core.Metadata.SharedMetadata.FolderVariable)))
        {
            return $"it lands attorney events in the lake zone '{store.Zone}', whose files must be in a folder every worker sees: set {Core.Metadata.SharedMetadata.FolderVariable} (or give its store a postgres: schema)";
        }

        return string.IsNullOrEmpty(Environment.GetEnvironmentVariable(store.KeyEnv))
            ? $"each worker would protect fields with a key of its own data folder ({store.KeyFile}); set {store.KeyEnv} to the same key for every worker"
            : null;
    }
}
