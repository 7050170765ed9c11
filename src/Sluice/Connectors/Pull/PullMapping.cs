using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Connectors.Pull;

/// <summary>
/// What a recipe plugs in for a pull source with <c>mapping:</c>: it parses the keys it owns in the source block and
/// builds a source that maps and lands the pulled records itself (repeat-reminder's attorney events,
/// <c>Sluice.Recipes.Reminders.Pull</c>). The engine's pull sources only hand it their extractor, so they import no
/// recipe code. Registered with <see cref="ComponentRegistry.AddPlugIn{T}"/>.
/// </summary>
public interface IPullMapper
{
    /// <summary>The plug-in's options from the source block; null when they are invalid (problems recorded in <paramref name="map"/>).</summary>
    object? Parse(ConfigMap map, RecipeContext recipe);

    IRunnableSource Create(IEngineServices services, string recipe, string kind, string pipeline, object options, IIncrementalExtractor extractor);

    /// <summary>
    /// Null when a cluster may run the mapped pull under its lease (what it lands goes to a store every worker shares,
    /// and a page's writes check <see cref="IPullFence"/>); else why not, for <c>run --cluster</c> to refuse the recipe with.
    /// </summary>
    string? ClusterProblem(object options) => "the plug-in that maps its records does not say it lands them in a store every worker shares";
}

/// <summary>A pull's <c>mapping:</c> as parsed by the registered <see cref="IPullMapper"/>.</summary>
public sealed record PullMapping(IPullMapper Mapper, object Options)
{
    /// <summary>The mapping of a source block that has <c>mapping:</c>; null (with an error) when no plug-in handles it or its options are invalid.</summary>
    public static PullMapping? Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        if (recipe.Components?.PlugIn<IPullMapper>() is not { } mapper)
        {
            map.Error("mapping", "nothing registered maps pulled records (the recipe components that do are not loaded); remove mapping: to hand the rows to the pipeline's sinks");
            return null;
        }

        return mapper.Parse(map, recipe) is { } options ? new PullMapping(mapper, options) : null;
    }

    public IRunnableSource Create(IEngineServices services, string recipe, string kind, string pipeline, IIncrementalExtractor extractor) =>
        Mapper.Create(services, recipe, kind, pipeline, Options, extractor);
}
