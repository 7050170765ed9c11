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
}
