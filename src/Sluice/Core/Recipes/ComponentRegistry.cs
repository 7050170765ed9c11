using Sluice.Core.Pipeline;

namespace Sluice.Core.Recipes;

/// <summary>Source, step, sink and job types by the name a recipe uses for them. Each connector registers itself in <see cref="Components"/>.</summary>
public sealed class ComponentRegistry
{
    private readonly Dictionary<string, ISourceType> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IStepType> _steps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ISinkType> _sinks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IJobType> _jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IRecipeSection> _sections = new(StringComparer.Ordinal);
    private readonly Dictionary<Type, object> _plugIns = [];
    private readonly List<RecipeFile> _files = [];

    public IReadOnlyCollection<string> SourceNames => _sources.Keys;

    public IReadOnlyCollection<string> StepNames => _steps.Keys;

    public IReadOnlyCollection<string> SinkNames => _sinks.Keys;

    public IReadOnlyCollection<string> JobNames => _jobs.Keys;

    public ComponentRegistry Add(ISourceType type)
    {
        _sources[type.Name] = type;
        return this;
    }

    public ComponentRegistry Add(IStepType type)
    {
        _steps[type.Name] = type;
        return this;
    }

    public ComponentRegistry Add(ISinkType type)
    {
        _sinks[type.Name] = type;
        return this;
    }

    public ComponentRegistry Add(IJobType type)
    {
        _jobs[type.Name] = type;
        return this;
    }

    public ComponentRegistry Add(IRecipeSection section)
    {
        _sections[section.Name] = section;
        return this;
    }

    /// <summary>
    /// Something a component looks up at load by its type rather than by a name in the recipe (the engine defines the
    /// contract, a recipe project registers the implementation: a pull's <c>mapping:</c>).
    /// </summary>
    public ComponentRegistry AddPlugIn<T>(T plugIn)
        where T : class
    {
        _plugIns[typeof(T)] = plugIn;
        return this;
    }

    public T? PlugIn<T>()
        where T : class => _plugIns.GetValueOrDefault(typeof(T)) as T;

    public IReadOnlyCollection<IRecipeSection> Sections => _sections.Values;

    /// <summary>Files a plug-in's components read from the recipe's folder (docs/reference/recipe.md describes them).</summary>
    public ComponentRegistry Add(RecipeFile file)
    {
        _files.Add(file);
        return this;
    }

    public IReadOnlyList<RecipeFile> Files => _files;

    public ISourceType? Source(string name) => _sources.GetValueOrDefault(name);

    public IStepType? Step(string name) => _steps.GetValueOrDefault(name);

    public ISinkType? Sink(string name) => _sinks.GetValueOrDefault(name);

    public IJobType? Job(string name) => _jobs.GetValueOrDefault(name);
}
