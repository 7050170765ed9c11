using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Core.Pipeline;

/// <summary>
/// A sink type declared once: the name recipes use, how its options are read, and how a sink is made from them. The
/// factory every sink type used to write by hand comes from here; a sink that can keep a change stream (a mirror)
/// declares it with <see cref="ChangeStream"/>. <see cref="ISinkType"/> and <see cref="ISinkFactory"/> stay the
/// contracts the recipe loader knows, so a type written against them still works.
/// </summary>
public abstract class SinkType<TOptions>(string name) : ISinkType
    where TOptions : notnull
{
    public string Name { get; } = name;

    /// <summary>Reads the options, recording every problem in <paramref name="map"/> (file:line: key) rather than stopping at the first.</summary>
    protected abstract TOptions ParseOptions(ConfigMap map, RecipeContext recipe);

    /// <summary>A sink of the recipe <paramref name="recipe"/> (its name: dead-letter sources, idempotency keys) with the parsed options.</summary>
    protected abstract IBatchSink Create(TOptions options, string recipe, IEngineServices services);

    /// <summary>How the sink takes a change-data-capture stream, when it can (mirrors); null when it takes rows only.</summary>
    protected virtual ChangeStreamUse? ChangeStream(TOptions options, ConfigMap map) => null;

    public ISinkFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        var parsed = ParseOptions(options, recipe);
        var name = recipe.Name;
        IBatchSink Make(IEngineServices services) => Create(parsed, name, services);
        return ChangeStream(parsed, options) is { } use ? new ChangeStreamSinkFactory<TOptions>(parsed, Make, use) : new SinkFactory<TOptions>(parsed, Make);
    }
}

/// <summary>The parsed options of one sink of a recipe, and how to make it (once the engine's services exist).</summary>
public class SinkFactory<TOptions>(TOptions options, Func<IEngineServices, IBatchSink> create) : ISinkFactory, IChecksBatchTables, IChecksBatchShape, IConnectionCheck
{
    /// <summary>The options' own check of the tables and columns they name (<see cref="IChecksBatchShape"/>), when they have one.</summary>
    public void Check(BatchShape input, ShapeProblems problems) => (options as IChecksBatchShape)?.Check(input, problems);

    /// <summary>The options' own check of their server (<see cref="IConnectionCheck"/>), when they have one.</summary>
    public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) =>
        options is IConnectionCheck check ? check.CheckConnectionAsync(ct) : Task.FromResult<IReadOnlyList<string>>([]);

    public TOptions Options => options;

    public bool SkipsCommittedSequences => options is ISkipsCommittedSequences;

    /// <summary>The options' own check of a table the source hands on (<see cref="IChecksBatchTables"/>), when they have one.</summary>
    public string? Problem(Schema.TableSchema table) => (options as IChecksBatchTables)?.Problem(table);

    public IBatchSink Create(IEngineServices services) => create(services);
}

/// <summary>
/// A sink's use of a change stream (<see cref="IChangeStreamSink"/>): its name for errors, the option that asks for
/// the stream (null: none asked), the tables it keys by the source's key, and its own checks against the source.
/// </summary>
public sealed record ChangeStreamUse(string SinkName, string? Option, Func<string, bool> NeedsSourceKey)
{
    public Action<IChangeSourceFactory>? CheckSource { get; init; }

    /// <summary>The tables the sink keeps by key (<see cref="IChangeStreamSink.KeepsByKey"/>); null: those it keys by the source's key.</summary>
    public Func<string, bool>? KeepsByKey { get; init; }
}

internal sealed class ChangeStreamSinkFactory<TOptions>(TOptions options, Func<IEngineServices, IBatchSink> create, ChangeStreamUse use)
    : SinkFactory<TOptions>(options, create), IChangeStreamSink
{
    public string SinkName => use.SinkName;

    public string? ChangeStreamOption => use.Option;

    public bool NeedsSourceKey(string table) => use.NeedsSourceKey(table);

    public void CheckSource(IChangeSourceFactory source) => use.CheckSource?.Invoke(source);

    public bool KeepsByKey(string table) => (use.KeepsByKey ?? use.NeedsSourceKey)(table);
}
