using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Mapping;

namespace Sluice.Recipes.Reminders.Pull;

/// <summary>
/// What every incremental pull source of the recipe shares (keys of its <c>source:</c> block): the mapping that turns
/// its records into attorney events, the store they land in, how often it polls and how far back it looks again.
/// </summary>
public sealed class PullOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PullOptions Default = OptionDefaults.Of<PullOptions>();

    /// <summary>The mapping file, relative to the recipe (required; for example <c>mappings/salesforce-api.yaml</c>).</summary>
    public required RecordMapping Mapping { get; init; }

    /// <summary>The store file, relative to the recipe.</summary>
    public required ReminderStoreOptions Store { get; init; }

    /// <summary>Pause between pulls while running.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How far below the newest stamp landed each pull reads again, for late commits and clock skew.</summary>
    public TimeSpan Overlap { get; init; } = TimeSpan.FromMinutes(5);

    public static PullOptions? Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        var mappingFile = map.RequiredString("mapping", doc: "The mapping file, relative to the recipe (required; for example `mappings/salesforce-api.yaml`).");
        var mapping = mappingFile.Length == 0 ? null : RecordMapping.Load(Path.Combine(recipe.Folder, mappingFile), AttorneyEventModel.Schema, recipe.Errors);
        var store = ReminderStoreOptions.FromKey(map, recipe, "The store file, relative to the recipe.");
        var poll = map.Duration("poll_interval", Default.PollInterval, doc: "Pause between pulls while running.");
        var overlap = map.Duration("overlap", Default.Overlap, doc: "How far below the newest stamp landed each pull reads again, for late commits and clock skew.");
        if (poll <= TimeSpan.Zero) { map.Error("poll_interval", "must be more than 0"); }
        if (overlap > TimeSpan.FromDays(7)) { map.Error("overlap", "must be at most 7 days"); }
        return mapping is null ? null : new PullOptions { Mapping = mapping, Store = store, PollInterval = poll, Overlap = overlap };
    }
}
