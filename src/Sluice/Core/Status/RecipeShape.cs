namespace Sluice.Core.Status;

// What the console draws a recipe from: its pipelines (source -> steps -> sinks, the jobs run after each load) and
// its jobs. Names and types only; the figures come from the pipelines' and jobs' own status.

public sealed record RecipeShape(string Name, string Description, IReadOnlyList<PipelineShape> Pipelines, IReadOnlyList<JobShape> Jobs)
{
    public static RecipeShape Of(Recipes.Recipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return new RecipeShape(
            recipe.Name, recipe.Description,
            recipe.Pipelines.Select(p => new PipelineShape(p.Name, p.SourceType, p.StepTypes, p.AfterLoad)).ToList(),
            recipe.Jobs.Select(j => new JobShape(j.Name, j.Type, j.Schedule)).ToList());
    }
}

public sealed record PipelineShape(string Name, string Source, IReadOnlyList<string> Steps, IReadOnlyList<string> AfterLoad);

public sealed record JobShape(string Name, string Type, string? Schedule);
