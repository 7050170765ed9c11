using Sluice.Core;
using Sluice.Core.Config;

namespace Sluice.Models;

/// <summary>
/// The models of one folder (<c>models/&lt;schema&gt;/&lt;name&gt;.sql|.yaml</c>) in dependency order. A model depends on
/// the models its SQL names (<c>schema.table</c> outside comments and strings), on those its header lists under
/// <c>depends_on</c>, and, for clean models, on the relations of its lookups; the quarantine table counts as the output
/// of every clean model. Names that are not models must be declared sources (lake tables the models read).
/// </summary>
public sealed class ModelProject
{
    private ModelProject(string folder, IReadOnlyList<ModelDefinition> models, IReadOnlyList<string> sources, string quarantine)
    {
        Folder = folder;
        Models = models;
        DeclaredSources = sources;
        Quarantine = quarantine;
    }

    public string Folder { get; }

    /// <summary>Every model, each after the models it reads.</summary>
    public IReadOnlyList<ModelDefinition> Models { get; }

    public IReadOnlyList<string> DeclaredSources { get; }

    /// <summary>The table clean models send rejected rows to (<c>schema.table</c>).</summary>
    public string Quarantine { get; }

    /// <summary>The lake tables that some model reads.</summary>
    public IReadOnlyList<string> Sources => Models.SelectMany(m => m.Sources).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    public bool HasCleanModels => Models.Any(m => m.Kind == ModelKind.Clean);

    public ModelDefinition? Find(string name) => Models.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The selected models, in run order: by name, <c>+name</c> (with every model it reads, transitively), <c>name+</c>
    /// (with every model that reads it), or <c>tag:x</c>; none selects all. An unknown name or tag is an error listing the known ones.
    /// </summary>
    public IReadOnlyList<ModelDefinition> Select(IReadOnlyCollection<string> selectors)
    {
        ArgumentNullException.ThrowIfNull(selectors);
        if (selectors.Count == 0) { return Models; }
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var selector in selectors)
        {
            if (selector.StartsWith("tag:", StringComparison.OrdinalIgnoreCase))
            {
                var tag = selector[4..];
                var tagged = Models.Where(m => m.Tags.Contains(tag, StringComparer.OrdinalIgnoreCase)).ToList();
                if (tagged.Count == 0)
                {
                    throw new SluiceException($"no model has tag '{tag}' (tags: {string.Join(", ", Models.SelectMany(m => m.Tags).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal).DefaultIfEmpty("none"))}).");
                }

                chosen.UnionWith(tagged.Select(m => m.Name));
                continue;
            }

            var upstream = selector.StartsWith('+');
            var downstream = selector.EndsWith('+');
            var name = selector.Trim('+');
            var model = Find(name) ?? throw new SluiceException($"no model '{name}' in {Folder} (models: {string.Join(", ", Models.Select(m => m.Name))}).");
            chosen.Add(model.Name);
            if (upstream) { chosen.UnionWith(Closure(model.Name, m => m.Dependencies)); }
            if (downstream) { chosen.UnionWith(Closure(model.Name, m => Models.Where(d => d.Dependencies.Contains(m.Name, StringComparer.Ordinal)).Select(d => d.Name))); }
        }

        return Models.Where(m => chosen.Contains(m.Name)).ToList();
    }

    private HashSet<string> Closure(string start, Func<ModelDefinition, IEnumerable<string>> next)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>([start]);
        while (queue.TryDequeue(out var name))
        {
            if (Find(name) is not { } m) { continue; }
            foreach (var n in next(m).Where(seen.Add)) { queue.Enqueue(n); }
        }

        return seen;
    }

    /// <summary>Loads and validates every model of <paramref name="folder"/>; problems go to <paramref name="errors"/>.</summary>
    public static ModelProject Load(string folder, IReadOnlyList<string> sources, string quarantine, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var display = Path.GetRelativePath(Directory.GetCurrentDirectory(), folder);
        var parsed = new List<ModelDefinition>();
        if (!Directory.Exists(folder))
        {
            errors.Add(display, 1, "(folder)", "the models folder does not exist");
            return new ModelProject(folder, [], sources, quarantine);
        }

        foreach (var schemaDir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            var schema = Path.GetFileName(schemaDir);
            foreach (var file in Directory.EnumerateFiles(schemaDir).Order(StringComparer.Ordinal))
            {
                var ext = Path.GetExtension(file).ToLowerInvariant();
                if (ext is not (".sql" or ".yaml" or ".yml")) { continue; }
                var table = Path.GetFileNameWithoutExtension(file);
                var name = $"{schema}.{table}".ToLowerInvariant();
                if (!SqlText.IsIdentifier(schema) || !SqlText.IsIdentifier(table))
                {
                    errors.Add(Path.GetRelativePath(Directory.GetCurrentDirectory(), file), 1, "(name)", $"'{schema}/{table}' must be letters, digits and '_' (the folder is the schema, the file name the table)");
                    continue;
                }

                if (parsed.Any(m => m.Name == name))
                {
                    errors.Add(Path.GetRelativePath(Directory.GetCurrentDirectory(), file), 1, "(name)", $"model '{name}' is defined twice (a .sql and a .yaml of the same name)");
                    continue;
                }

                var model = ext == ".sql" ? ModelFileParser.ParseSql(file, name, errors) : ModelFileParser.ParseClean(file, name, errors);
                if (model is not null) { parsed.Add(model); }
            }
        }

        return FromModels(folder, parsed, sources, quarantine, errors);
    }

    /// <summary>Resolves the dependencies of parsed models and orders them (the part of <see cref="Load"/> after reading files).</summary>
    public static ModelProject FromModels(string folder, IReadOnlyList<ModelDefinition> parsed, IReadOnlyList<string> sources, string quarantine, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(parsed);
        ArgumentNullException.ThrowIfNull(errors);
        var display = Path.GetRelativePath(Directory.GetCurrentDirectory(), folder);
        if (parsed.Any(m => m.Name == quarantine))
        {
            errors.Add(display, 1, "quarantine", $"'{quarantine}' is the quarantine table; no model may have that name");
        }

        // A clean model's source is a declared source by itself.
        var allSources = sources.Concat(parsed.Where(m => m.Kind == ModelKind.Clean).Select(m => m.Clean!.Source))
            .Where(s => parsed.All(m => m.Name != s)).Distinct(StringComparer.Ordinal).ToList();
        var resolved = parsed.Select(m => Resolve(m, parsed.ToList(), allSources, quarantine, errors)).ToList();
        return new ModelProject(folder, Order(resolved, display, errors), allSources, quarantine);
    }

    private static ModelDefinition Resolve(ModelDefinition model, List<ModelDefinition> all, IReadOnlyList<string> sources, string quarantine, ConfigErrors errors)
    {
        var names = new HashSet<string>(all.Select(m => m.Name), StringComparer.Ordinal);
        var known = new HashSet<string>(sources, StringComparer.Ordinal);
        var deps = new SortedSet<string>(StringComparer.Ordinal);
        var reads = new SortedSet<string>(StringComparer.Ordinal);
        var cleanModels = all.Where(m => m.Kind == ModelKind.Clean).Select(m => m.Name).ToList();

        void Read(string relation, int line, string key)
        {
            if (relation == model.Name) { return; }
            if (names.Contains(relation)) { deps.Add(relation); }
            else if (relation == quarantine) { deps.UnionWith(cleanModels.Where(c => c != model.Name)); }
            else if (known.Contains(relation)) { reads.Add(relation); }
            else { errors.Add(model.File, line, key, $"reads '{relation}', which is neither a model nor a declared source (models: {string.Join(", ", names.Order(StringComparer.Ordinal))}; sources: {string.Join(", ", sources)})"); }
        }

        if (model.Kind == ModelKind.Clean)
        {
            Read(model.Clean!.Source, 1, "source");
            foreach (var l in model.Clean.Lookups) { Read(l.Relation, 1, "lookups"); }
            foreach (var c in model.Clean.Checks) { foreach (var r in SqlText.ReadRelations(c.When)) { Read(r, 1, "checks"); } }
        }
        else
        {
            foreach (var relation in SqlText.QualifiedNames(model.Sql).Where(n => names.Contains(n) || known.Contains(n) || n == quarantine))
            {
                Read(relation, model.SqlLine, "(sql)");
            }

            foreach (var relation in SqlText.ReadRelations(model.Sql))
            {
                Read(relation, model.SqlLine, "(sql)");
            }
        }

        foreach (var d in model.DeclaredDependencies)
        {
            if (names.Contains(d.ToLowerInvariant())) { deps.Add(d.ToLowerInvariant()); }
            else { errors.Add(model.File, 1, "depends_on", $"'{d}' is not a model"); }
        }

        deps.Remove(model.Name);
        return model with { Dependencies = deps.ToList(), Sources = reads.ToList() };
    }

    /// <summary>Kahn's algorithm, ties broken by name so the order is the same on every run.</summary>
    private static List<ModelDefinition> Order(List<ModelDefinition> models, string display, ConfigErrors errors)
    {
        var byName = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var waiting = models.ToDictionary(m => m.Name, m => m.Dependencies.Count(byName.ContainsKey), StringComparer.Ordinal);
        var ready = new SortedSet<string>(waiting.Where(w => w.Value == 0).Select(w => w.Key), StringComparer.Ordinal);
        var order = new List<ModelDefinition>();
        while (ready.Count > 0)
        {
            var next = ready.Min!;
            ready.Remove(next);
            order.Add(byName[next]);
            foreach (var m in models.Where(m => m.Dependencies.Contains(next, StringComparer.Ordinal)))
            {
                if (--waiting[m.Name] == 0) { ready.Add(m.Name); }
            }
        }

        if (order.Count < models.Count)
        {
            var left = models.Where(m => !order.Contains(m)).ToList();
            errors.Add(left[0].File, 1, "(dependencies)", $"models depend on each other in a cycle: {Cycle(left, byName)}");
        }

        return order;
    }

    private static string Cycle(List<ModelDefinition> left, Dictionary<string, ModelDefinition> byName)
    {
        var path = new List<string>();
        var current = left[0].Name;
        while (!path.Contains(current))
        {
            path.Add(current);
            current = byName[current].Dependencies.First(d => left.Any(l => l.Name == d));
        }

        return string.Join(" -> ", path.Skip(path.IndexOf(current)).Append(current));
    }
}
