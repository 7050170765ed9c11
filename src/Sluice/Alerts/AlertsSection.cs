using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Alerts;

/// <summary>A recipe's <c>alerts:</c> section, registered with the loader (<see cref="Components"/>); read back as <c>recipe.Alerts</c>.</summary>
public sealed class AlertsSection : IRecipeSection
{
    public const string SectionName = "alerts";

    public string Name => SectionName;

    public string Doc => "Alerts the running host checks: rules on freshness, lag, replication slots, dead letters and jobs, and where notices go (docs/OBSERVABILITY.md, \"Alerts\").";

    public object? Parse(ConfigMap? map, RecipeContext recipe, IReadOnlyList<PipelineDefinition> pipelines, IReadOnlyList<JobDefinition> jobs, IReadOnlyCollection<string> tables) =>
        AlertsOptions.Parse(map, recipe, pipelines, jobs, tables);
}
