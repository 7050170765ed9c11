namespace Sluice.Core.Recipes;

/// <summary>Source and job types by the name a recipe uses for them. Each connector registers itself in <see cref="Default"/>.</summary>
public sealed class ComponentRegistry
{
    private readonly Dictionary<string, ISourceType> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IJobType> _jobs = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> SourceNames => _sources.Keys;

    public IReadOnlyCollection<string> JobNames => _jobs.Keys;

    public ComponentRegistry Add(ISourceType type)
    {
        _sources[type.Name] = type;
        return this;
    }

    public ComponentRegistry Add(IJobType type)
    {
        _jobs[type.Name] = type;
        return this;
    }

    public ISourceType? Source(string name) => _sources.GetValueOrDefault(name);

    public IJobType? Job(string name) => _jobs.GetValueOrDefault(name);
}
