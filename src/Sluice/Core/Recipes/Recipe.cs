namespace Sluice.Core.Recipes;

/// <summary>A loaded, validated recipe: its pipelines and jobs, ready to build.</summary>
public sealed class Recipe
{
    public required string Name { get; init; }

    /// <summary>The recipe's folder (holds recipe.yaml, filetypes/, models/, ...).</summary>
    public required string Folder { get; init; }

    public string Description { get; init; } = "";

    public required IReadOnlyList<PipelineDefinition> Pipelines { get; init; }

    public required IReadOnlyList<JobDefinition> Jobs { get; init; }

    /// <summary>The recipe's other sections by name (<c>alerts</c>), as their <see cref="IRecipeSection"/> parsed them; a section the recipe does not declare is absent.</summary>
    public IReadOnlyDictionary<string, object> Sections { get; init; } = new Dictionary<string, object>();

    public JobDefinition? Job(string name) => Jobs.FirstOrDefault(j => string.Equals(j.Name, name, StringComparison.Ordinal));
}

/// <summary>
/// A pipeline: one source, optional steps and sinks (for stream sources), and the jobs to run after each load
/// (<c>after_load</c>). A source without sinks (the files source) writes to the lake itself.
/// </summary>
public sealed record PipelineDefinition(string Name, string SourceType, ISourceFactory Source, IReadOnlyList<string> AfterLoad)
{
    public IReadOnlyList<Pipeline.IStepFactory> Steps { get; init; } = [];

    /// <summary>The steps' type names as the recipe writes them (in order), for the console's graph.</summary>
    public IReadOnlyList<string> StepTypes { get; init; } = [];

    public IReadOnlyList<Pipeline.ISinkFactory> Sinks { get; init; } = [];

    /// <summary>The sinks' type names as the recipe writes them (in order).</summary>
    public IReadOnlyList<string> SinkTypes { get; init; } = [];

    /// <summary>The check of the tables and columns its steps and sinks name (<see cref="Pipeline.PipelineShapeCheck"/>), run at load; null without sinks.</summary>
    public Pipeline.PipelineShapeCheck? Shapes { get; init; }

    /// <summary>Why the load could not check every table and column its steps and sinks name (a CDC source's columns); null when it could.</summary>
    public string? Unchecked { get; init; }

    /// <summary>Every component of the pipeline with its place in the recipe (<c>pipelines.p.sinks[1] (postgres)</c>), for messages about it.</summary>
    public IEnumerable<(string Place, object Factory)> Components() =>
        new[] { ($"pipelines.{Name}.source ({SourceType})", (object)Source) }
            .Concat(Steps.Select((s, i) => ($"pipelines.{Name}.steps[{i}] ({StepTypes.ElementAtOrDefault(i)})", (object)s)))
            .Concat(Sinks.Select((s, i) => ($"pipelines.{Name}.sinks[{i}] ({SinkTypes.ElementAtOrDefault(i)})", (object)s)));

    /// <summary>Builds the running pipeline: the source itself, or a <see cref="Pipeline.StreamPipeline"/> around a stream source.</summary>
    public IRunnableSource Create(IEngineServices services, string recipe)
    {
        if (Sinks.Count == 0)
        {
            return Source.Create(services);
        }

        var stream = ((Pipeline.IStreamSourceFactory)Source).CreateStream(services);
        if (stream is Pipeline.ILogSequencedSource sequenced && Sinks.Any(s => s.SkipsCommittedSequences)) { sequenced.CarrySequences(); }
        return new Pipeline.StreamPipeline(services, recipe, Name, stream, Steps.Select(s => s.Create(services)).ToList(), Sinks.Select(s => s.Create(services)).ToList());
    }
}

/// <summary>A job: a registered type with parsed options, and its cron schedule (UTC; null = manual only).</summary>
public sealed record JobDefinition(string Recipe, string Name, string Type, string? Schedule, IJobFactory Factory)
{
    public string FullName => $"{Recipe}/{Name}";
}
