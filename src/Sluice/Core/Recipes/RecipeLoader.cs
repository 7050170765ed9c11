using Sluice.Core.Config;

namespace Sluice.Core.Recipes;

/// <summary>
/// Finds a recipe by folder name under the recipes folder (<c>SLUICE_RECIPES</c>, else <c>./recipes</c>) or by path,
/// reads its <c>recipe.yaml</c> and validates everything at once: unknown keys, wrong types, missing fields, bad cron,
/// unknown connectors, each reported as <c>file:line: key: what is wrong</c>.
/// </summary>
public sealed class RecipeLoader(ComponentRegistry registry)
{
    public const string FileName = "recipe.yaml";

    /// <summary>
    /// The recipe is loaded to run on a cluster (<c>run --cluster</c>, <c>validate --cluster</c>): the columns cluster
    /// mode adds to a pipeline's rows are declared at load, so the steps and sinks that name them are checked
    /// (<see cref="Pipeline.PipelineShapeCheck.Sequenced"/>).
    /// </summary>
    public bool Cluster { get; init; }

    public static string RecipesRoot => Environment.GetEnvironmentVariable("SLUICE_RECIPES") ?? Path.GetFullPath("recipes");

    public static string ResolveFolder(string nameOrPath)
    {
        if (Directory.Exists(nameOrPath) && File.Exists(Path.Combine(nameOrPath, FileName)))
        {
            return Path.GetFullPath(nameOrPath);
        }

        var named = Path.Combine(RecipesRoot, nameOrPath);
        if (File.Exists(Path.Combine(named, FileName)))
        {
            return named;
        }

        var known = Directory.Exists(RecipesRoot)
            ? string.Join(", ", Directory.EnumerateDirectories(RecipesRoot).Where(d => File.Exists(Path.Combine(d, FileName))).Select(Path.GetFileName).Order(StringComparer.Ordinal))
            : "none";
        throw new SluiceException($"recipe '{nameOrPath}' not found: no {FileName} in '{named}' or '{Path.GetFullPath(nameOrPath)}' (recipes in {RecipesRoot}: {known}).");
    }

    /// <summary>Loads and validates; throws <see cref="ConfigException"/> listing every problem.</summary>
    public Recipe Load(string nameOrPath)
    {
        var (recipe, errors) = TryLoad(nameOrPath);
        errors.ThrowIfAny();
        return recipe!;
    }

    public (Recipe? Recipe, ConfigErrors Errors) TryLoad(string nameOrPath)
    {
        var folder = ResolveFolder(nameOrPath);
        var errors = new ConfigErrors();
        var map = ConfigMap.Load(Path.Combine(folder, FileName), errors);
        return map is null ? (null, errors) : (Read(map, folder), errors);
    }

    /// <summary>
    /// Reads a recipe.yaml mapping (problems go to the map's errors). On a describing map (<see cref="ConfigMap.Describe"/>)
    /// it declares the file's own keys for the reference page recipe.md; the components' keys are on their own pages.
    /// </summary>
    public Recipe Read(ConfigMap map, string folder)
    {
        ArgumentNullException.ThrowIfNull(map);
        var errors = map.Errors;
        var name = map.String("name", doc: "The recipe's name (default: its folder's name): it names its data, checkpoints and dead-letter sources.") ?? Path.GetFileName(folder);
        var description = map.String("description", doc: "One line saying what the recipe does (`sluice recipes` shows it).") ?? "";
        var context = new RecipeContext(name, folder, errors) { Components = registry };

        var jobs = new List<JobDefinition>();
        var jobMaps = new Dictionary<string, ConfigMap>(StringComparer.Ordinal);
        foreach (var (jobName, job) in map.NamedMaps("jobs", doc: "The recipe's jobs by name: each a `type` (docs/reference/jobs.md) with that type's options."))
        {
            var type = job.RequiredString("type", doc: "The job type (docs/reference/jobs.md); the job's other keys are that type's options.");
            var schedule = job.String("schedule", doc: "When the job runs by itself: five-field cron, UTC (`0 2 * * *`). Without it the job runs on demand (`sluice job run`) or after a pipeline's load (`after_load`).");
            if (schedule is not null && CronCheck.Problem(schedule) is { } problem)
            {
                job.Error("schedule", $"not a valid cron expression '{schedule}': {problem}");
            }

            var jobType = registry.Job(type);
            if (jobType is null)
            {
                if (type.Length > 0) { job.Error("type", $"unknown job type '{type}' (known: {string.Join(", ", registry.JobNames.Order(StringComparer.Ordinal))})"); }
                continue;
            }

            var factory = jobType.Parse(job, context);
            job.Done();
            jobs.Add(new JobDefinition(name, jobName, type, schedule, factory));
            jobMaps[jobName] = job;
        }

        var pipelines = new List<PipelineDefinition>();
        foreach (var (pipelineName, pipeline) in map.NamedMaps("pipelines", doc: "The recipe's pipelines by name: a source, optional steps and sinks."))
        {
            var errorsBefore = errors.All.Count;
            var source = pipeline.Map("source", required: true, doc: "Where the pipeline's data comes from: a `type` (docs/reference/sources.md) with that type's options.");
            var stepTypes = new List<string>();
            var stepMaps = new List<ConfigMap>();
            var steps = ParseList(pipeline, "steps", "The pipeline's steps, applied in this order to every batch between the source and the sinks", registry.Step, registry.StepNames, "step", (t, m) => t.Parse(m, context), stepTypes, stepMaps);
            var sinkTypes = new List<string>();
            var sinkMaps = new List<ConfigMap>();
            var sinks = ParseList(pipeline, "sinks", "Where the pipeline's batches go; each sink receives every batch (none: the source lands its data itself, if it can)", registry.Sink, registry.SinkNames, "sink", (t, m) => t.Parse(m, context), sinkTypes, sinkMaps);
            var afterLoad = pipeline.StringList("after_load", doc: "Jobs of this recipe run after each load that changed data.");
            foreach (var j in afterLoad.Where(j => jobs.All(d => d.Name != j)))
            {
                pipeline.Error("after_load", $"no job named '{j}' in this recipe");
            }

            pipeline.Done();
            if (source is null)
            {
                continue;
            }

            var type = source.RequiredString("type", doc: "The source type (docs/reference/sources.md); the block's other keys are that type's options.");
            var sourceType = registry.Source(type);
            if (sourceType is null)
            {
                if (type.Length > 0) { source.Error("type", $"unknown connector '{type}' (known: {string.Join(", ", registry.SourceNames.Order(StringComparer.Ordinal))})"); }
                continue;
            }

            var factory = sourceType.Parse(source, context);
            source.Done();
            if (sinks.Count > 0 && factory is not Pipeline.IStreamSourceFactory)
            {
                source.Error("type", $"source '{type}' lands its data itself and takes no sinks; remove 'sinks'");
            }
            else if (factory is Pipeline.IStreamSourceFactory stream && stream.SinksProblem(sinks.Count > 0) is { } problem)
            {
                pipeline.Error("sinks", problem);
            }
            else if (sinks.Count == 0 && factory is Pipeline.IStreamSourceFactory && factory is not IStandaloneSource)
            {
                pipeline.Error("sinks", $"source '{type}' needs at least one sink");
            }
            else if (sinks.Count == 0 && steps.Count > 0)
            {
                pipeline.Error("steps", $"steps change what goes to sinks, and this pipeline has none: without sinks source '{type}' lands its data itself; add sinks (for example a lake sink) or remove steps");
            }

            Pipeline.PipelineShapeCheck? shapes = null;
            string? notChecked = null;
            // Columns are followed only through components that loaded cleanly: a broken one says nothing reliable about them.
            if (sinks.Count > 0)
            {
                shapes = new Pipeline.PipelineShapeCheck(type, factory, pipeline,
                    steps.Select((f, i) => ((object)f, stepTypes[i], stepMaps[i])).ToList(), sinks.Select((f, i) => ((object)f, sinkTypes[i], sinkMaps[i])).ToList())
                {
                    Sequenced = Cluster && factory is Pipeline.ILogSequencedSourceFactory && sinks.OfType<Pipeline.ISinkFactory>().Any(s => s.SkipsCommittedSequences),
                };
                if (errors.All.Count == errorsBefore) { notChecked = shapes.Run(errors); }
            }

            foreach (var sink in sinks.OfType<Pipeline.IChangeStreamSink>().Where(s => s.ChangeStreamOption is not null))
            {
                if (factory is Pipeline.IChangeSourceFactory changes)
                {
                    changes.RequireKeys(sink);
                    sink.CheckSource(changes);
                }
                else { pipeline.Error("sinks", $"sink '{sink.SinkName}' has {sink.ChangeStreamOption}, which needs a change-data-capture source (postgres_cdc) for its rows' keys and change envelope, but the source is '{type}'"); }
            }

            pipelines.Add(new PipelineDefinition(pipelineName, type, factory, afterLoad) { Steps = steps, StepTypes = stepTypes, Sinks = sinks, SinkTypes = sinkTypes, Shapes = shapes, Unchecked = notChecked });
        }

        foreach (var job in jobs)
        {
            if (job.Factory is Pipeline.IRowFeedingJob feed) { CheckFedSinks(job, feed, pipelines, jobMaps[job.Name]); }
        }

        var sections = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var section in registry.Sections)
        {
            if (section.Parse(map.Map(section.Name, doc: section.Doc), context, pipelines, jobs, WrittenTables(pipelines, jobs)) is { } parsed) { sections[section.Name] = parsed; }
        }

        map.Done();
        return new Recipe { Name = name, Folder = folder, Description = description, Pipelines = pipelines, Jobs = jobs, Sections = sections };
    }

    /// <summary>A mirror applies a change source's changes (their keys and positions): rows a job reads from a table cannot go into it.</summary>
    private static void CheckFedSinks(JobDefinition job, Pipeline.IRowFeedingJob feed, List<PipelineDefinition> pipelines, ConfigMap map)
    {
        if (pipelines.FirstOrDefault(p => p.Name == feed.Pipeline) is not { } target) { return; }
        var mirrors = target.Sinks.OfType<Pipeline.IChangeStreamSink>()
            .Where(s => s.ChangeStreamOption is not null && (feed.Sinks.Count == 0 || feed.Sinks.Contains(s.SinkName)));
        foreach (var sink in mirrors)
        {
            map.Error(feed.Sinks.Count == 0 ? "pipeline" : "sinks",
                $"{job.Type}: sink '{sink.SinkName}' of pipeline '{feed.Pipeline}' has {sink.ChangeStreamOption}, which needs a postgres_cdc source (it applies changes by key and position); " +
                $"this job sends rows read from a table, not changes. Name the other sinks in `sinks:`, and re-read a table into a mirror with `sluice cdc snapshot` instead.");
        }
    }
    /// <summary>The lake tables the recipe's components say they write (for checking the tables alerts name).</summary>
    private static List<string> WrittenTables(IEnumerable<PipelineDefinition> pipelines, IEnumerable<JobDefinition> jobs) =>
        pipelines.Select(p => (object)p.Source).Concat(pipelines.SelectMany(p => p.Sinks)).Concat(jobs.Select(j => j.Factory))
            .OfType<IWritesLakeTables>().SelectMany(w => w.LakeTables).Distinct(StringComparer.Ordinal).ToList();

    private static List<TFactory> ParseList<TType, TFactory>(
        ConfigMap pipeline, string key, string doc, Func<string, TType?> find, IReadOnlyCollection<string> known, string what, Func<TType, ConfigMap, TFactory> parse,
        List<string>? types = null, List<ConfigMap>? maps = null)
        where TType : class
    {
        var list = new List<TFactory>();
        foreach (var item in pipeline.MapList(key, doc: $"{doc}: each a `type` (docs/reference/{key}.md) with that type's options."))
        {
            var type = item.RequiredString("type", doc: $"The {what} type (docs/reference/{key}.md); the entry's other keys are that type's options.");
            var found = find(type);
            if (found is null)
            {
                if (type.Length > 0) { item.Error("type", $"unknown {what} '{type}' (known: {string.Join(", ", known.Order(StringComparer.Ordinal))})"); }
                continue;
            }

            list.Add(parse(found, item));
            types?.Add(type);
            maps?.Add(item);
            item.Done();
        }

        return list;
    }

}
