using Sluice.Connectors.Pull;
using Sluice.Core.Recipes;
using Sluice.Recipes.Engagement;
using Sluice.Recipes.Reminders.Jobs;
using Sluice.Recipes.Reminders.Pipeline;
using Sluice.Recipes.Reminders.Pull;

namespace Sluice.Recipes;

/// <summary>
/// The shipped recipes' own components, registered into the engine's registry by whoever loads recipes (the CLI, the
/// benchmarks, the tests): the engine (<see cref="Components"/>) knows none of them.
/// </summary>
public static class RecipeComponents
{
    /// <summary>The engine's components and the recipes' own.</summary>
    public static ComponentRegistry Create() => Register(Components.Create());

    public static ComponentRegistry Register(ComponentRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry
            .Add(new EngagementEnrichStepType())
            .Add(new AttorneyEventsStepType())
            .Add(new ReminderStoreSinkType())
            .Add(new SendRemindersJobType())
            .Add(new RecipeFile(Reminders.ReminderStoreOptions.DefaultFile, map => Reminders.ReminderStoreOptions.Parse(map, "keys/<recipe>.key")))
            .AddPlugIn<IPullMapper>(new ReminderPullMapper());
    }
}
